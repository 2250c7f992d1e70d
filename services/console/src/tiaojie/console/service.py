"""The console's rules: sign-in with lock-out, sessions with idle and absolute expiry,
sign-out, and the demo accounts of a development deployment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from tiaojie.console.metrics import ConsoleMetrics
from tiaojie.console.models import Account, SessionDoc
from tiaojie.console.repository import ConsoleRepository
from tiaojie.console.security import hash_password, needs_rehash, new_token, token_digest, verify_password
from tiaojie.console.settings import ConsoleSettings
from tiaojie.contracts.common import Role
from tiaojie.runtime.clock import Clock

# Sessions are touched at most this often, so browsing does not write on every page.
_TOUCH_EVERY = timedelta(seconds=60)


class SignInRefused(Exception):
    """Wrong username or password, a locked or a disabled account (one message for all)."""

    def __init__(self, *, locked: bool = False) -> None:
        super().__init__("sign-in refused")
        self.locked = locked


@dataclass(frozen=True)
class NewSession:
    token: str  # the cookie value; only its digest is stored
    session: SessionDoc


@dataclass(frozen=True)
class AccountSpec:
    username: str
    display_name: str
    role: Role
    counties: tuple[str, ...]
    mediator_id: str | None = None
    organisation_id: str | None = None


class ConsoleService:
    def __init__(
        self,
        *,
        repository: ConsoleRepository,
        settings: ConsoleSettings,
        clock: Clock,
        metrics: ConsoleMetrics,
    ) -> None:
        self.repo = repository
        self.settings = settings
        self.clock = clock
        self.metrics = metrics

    # -- accounts -----------------------------------------------------------------------
    async def create_account(self, *, spec: AccountSpec, password: str, demo: bool = False) -> bool:
        """Create an account unless the username exists; True if created."""
        account = Account(
            username=spec.username,
            display_name=spec.display_name,
            password_hash=hash_password(password),
            role=spec.role,
            counties=list(spec.counties),
            mediator_id=spec.mediator_id,
            organisation_id=spec.organisation_id,
            demo=demo,
            created_at=self.clock.now(),
        )
        return await self.repo.insert_account(account)

    async def ensure_demo_accounts(self, *, specs: list[AccountSpec]) -> int:
        """Create the missing demo accounts (development only); returns how many were new."""
        if self.settings.environment == "production" or not self.settings.demo_accounts:
            return 0
        created = 0
        for spec in specs:
            if await self.repo.get_account(spec.username) is None:
                created += await self.create_account(
                    spec=spec, password=self.settings.demo_password, demo=True
                )
        return created

    # -- sign-in and sessions -------------------------------------------------------------
    async def sign_in(self, *, username: str, password: str) -> NewSession:
        """Check the password (argon2id), count failures and lock, open a session."""
        now = self.clock.now()
        account = await self.repo.get_account(username)
        locked = account is not None and account.locked_until is not None and account.locked_until > now
        ok = verify_password(account.password_hash if account else None, password)
        if account is None or not account.active or locked or not ok:
            if account is not None and not locked and not ok:
                failures = await self.repo.count_failed_sign_in(account.username)
                if failures >= self.settings.max_failed_sign_ins:
                    until = now + timedelta(seconds=self.settings.lockout_seconds)
                    await self.repo.update_account(
                        account.username, {"locked_until": until, "failed_sign_ins": 0}
                    )
                    self.metrics.sign_ins.labels("locked").inc()
                    raise SignInRefused(locked=True)
            self.metrics.sign_ins.labels("locked" if locked else "refused").inc()
            raise SignInRefused(locked=locked)
        fields: dict[str, object] = {"failed_sign_ins": 0, "locked_until": None}
        if needs_rehash(account.password_hash):
            fields["password_hash"] = hash_password(password)
        await self.repo.update_account(account.username, fields)
        token = new_token()
        session = SessionDoc(
            id=token_digest(token),
            username=account.username,
            display_name=account.display_name,
            role=account.role,
            counties=account.counties,
            mediator_id=account.mediator_id,
            organisation_id=account.organisation_id,
            created_at=now,
            last_seen=now,
            expires_at=now + timedelta(seconds=self.settings.session_max_seconds),
        )
        await self.repo.insert_session(session)
        self.metrics.sign_ins.labels("ok").inc()
        return NewSession(token=token, session=session)

    async def resolve(self, *, token: str | None) -> SessionDoc | None:
        """The live session of a cookie value; an expired one is ended and None returned."""
        if not token:
            return None
        session = await self.repo.get_session(token_digest(token))
        if session is None:
            return None
        now = self.clock.now()
        idle_limit = session.last_seen + timedelta(seconds=self.settings.session_idle_seconds)
        if now >= idle_limit or now >= session.expires_at:
            await self.repo.delete_session(session.id)
            self.metrics.sessions_expired.inc()
            return None
        if now - session.last_seen >= _TOUCH_EVERY:
            await self.repo.touch_session(session.id, now)
        return session

    async def sign_out(self, *, token: str | None) -> None:
        if token:
            await self.repo.delete_session(token_digest(token))

    async def sweep_sessions(self) -> int:
        """Delete sessions past their idle or absolute limit."""
        now = self.clock.now()
        return await self.repo.delete_stale_sessions(
            idle_before=now - timedelta(seconds=self.settings.session_idle_seconds), now=now
        )
