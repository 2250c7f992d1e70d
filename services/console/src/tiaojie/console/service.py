"""The console's rules: sign-in with throttling per address and per account, sessions
with idle and absolute expiry that end when their account changes, sign-out, and the demo
accounts of a development deployment."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from tiaojie.console.metrics import ConsoleMetrics
from tiaojie.console.models import Account, SessionDoc, SignInAttempt
from tiaojie.console.repository import ConsoleRepository
from tiaojie.console.security import (
    hash_password_off_loop,
    needs_rehash,
    new_stamp,
    new_token,
    token_digest,
    verify_password_off_loop,
)
from tiaojie.console.settings import ConsoleSettings
from tiaojie.contracts.common import Role
from tiaojie.runtime.clock import Clock
from tiaojie.runtime.logging import get_logger

log = get_logger(__name__)
# Sessions are touched at most this often, so browsing does not write on every page.
_TOUCH_EVERY = timedelta(seconds=60)

# refused: wrong username or password, or a disabled account (one answer for all);
# throttled: too many failures from this address; locked: too many failures of this
# account from this address; delayed: the account is under attack and this address has
# failed it too; default_password: production refuses the published demo password.
Reason = Literal["refused", "throttled", "locked", "delayed", "default_password"]


class SignInRefused(Exception):
    """A refused sign-in, why, and (when throttled) how many seconds until a retry."""

    def __init__(self, reason: Reason = "refused", *, retry_after: int | None = None) -> None:
        super().__init__(f"sign-in refused: {reason}")
        self.reason: Reason = reason
        self.retry_after = retry_after


class PasswordRefused(ValueError):
    """A password production does not accept (the published demo password)."""


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def account_wait(
    *,
    now: datetime,
    settings: ConsoleSettings,
    pair: tuple[int, datetime | None],
    account: tuple[int, datetime | None],
) -> SignInRefused | None:
    """Whether an attempt on an account from an address must wait, from the failures of
    that account from that address (`pair`) and from anywhere (`account`), each a count
    and the latest. An address that has not failed the account is never held back, so a
    stranger cannot lock anyone out of their own address."""
    pair_failures, pair_latest = pair
    if not pair_failures or pair_latest is None:
        return None
    if pair_failures >= settings.max_failed_sign_ins:
        until = pair_latest + timedelta(seconds=settings.lockout_seconds)
        if until > now:
            return SignInRefused("locked", retry_after=_seconds_until(until, now))
    failures, latest = account
    if failures >= settings.max_failed_sign_ins and latest is not None:
        # Many addresses guessing one account: each that has failed it waits 1, 2, 4 ... s.
        steps = failures - settings.max_failed_sign_ins
        delay = min(float(settings.account_delay_max_seconds), 2.0 ** min(steps, 32))
        until = latest + timedelta(seconds=delay)
        if until > now:
            return SignInRefused("delayed", retry_after=_seconds_until(until, now))
    return None


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
        self._check_password(password, demo=demo)
        account = Account(
            username=spec.username,
            display_name=spec.display_name,
            password_hash=await hash_password_off_loop(password),
            role=spec.role,
            counties=list(spec.counties),
            mediator_id=spec.mediator_id,
            organisation_id=spec.organisation_id,
            demo=demo,
            security_stamp=new_stamp(),
            created_at=self.clock.now(),
        )
        return await self.repo.insert_account(account)

    def _check_password(self, password: str, *, demo: bool) -> None:
        if not demo and self._is_default_password(password):
            raise PasswordRefused("production refuses the demo password / 生产环境不接受演示密码")

    def _is_default_password(self, password: str) -> bool:
        return self.settings.environment == "production" and password == self.settings.demo_password

    async def disable_account(self, *, username: str) -> bool:
        """Disable an account and end its sessions; False if there is none."""
        return await self._change(username, {"active": False})

    async def enable_account(self, *, username: str) -> bool:
        """Enable an account again (it signs in anew)."""
        return await self._change(username, {"active": True})

    async def change_access(
        self,
        *,
        username: str,
        role: Role,
        counties: list[str],
        mediator_id: str | None = None,
        organisation_id: str | None = None,
    ) -> bool:
        """Give an account another role, counties or organisation and end its sessions."""
        fields = {
            "role": role,
            "counties": list(counties),
            "mediator_id": mediator_id,
            "organisation_id": organisation_id,
        }
        return await self._change(username, fields)

    async def set_password(self, *, username: str, password: str) -> bool:
        """Set a new password and end the account's sessions."""
        self._check_password(password, demo=False)
        return await self._change(username, {"password_hash": await hash_password_off_loop(password)})

    async def _change(self, username: str, fields: dict[str, Any]) -> bool:
        # A new stamp first, then the sessions go: a session that resolves in between is
        # refused by the stamp, one opened in between carries the new stamp and new claims.
        changed = await self.repo.update_account(username, {**fields, "security_stamp": new_stamp()})
        if changed:
            ended = await self.repo.delete_sessions_of(username)
            log.info("account changed, sessions ended", sessions=ended)
        return changed

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
    async def sign_in(self, *, username: str, password: str, address: str) -> NewSession:
        """Throttle by address and by account, check the password (argon2id, off the event
        loop) and open a session."""
        now = self.clock.now()
        attempt = SignInAttempt(id=uuid.uuid4().hex, username=username, address=address, at=now)
        # Recorded before anything is checked, so that concurrent attempts count each other.
        await self.repo.insert_attempt(attempt)
        try:
            await self._throttle(attempt)
        except SignInRefused as refused:
            await self.repo.delete_attempt(attempt.id)  # a refused attempt tested no password
            self.metrics.sign_ins.labels(refused.reason).inc()
            raise
        account = await self.repo.get_account(username)
        ok = await verify_password_off_loop(account.password_hash if account else None, password)
        if account is None or not account.active or not ok:
            self.metrics.sign_ins.labels("refused").inc()
            raise SignInRefused("refused")  # the attempt stays: a failure
        await self.repo.delete_attempt(attempt.id)
        if self._is_default_password(password):
            self.metrics.sign_ins.labels("default_password").inc()
            raise SignInRefused("default_password")
        await self.repo.forget_attempts(username=username, address=address)
        if needs_rehash(account.password_hash):
            await self.repo.update_account(
                account.username, {"password_hash": await hash_password_off_loop(password)}
            )
        token = new_token()
        session = SessionDoc(
            id=token_digest(token),
            username=account.username,
            display_name=account.display_name,
            role=account.role,
            counties=account.counties,
            mediator_id=account.mediator_id,
            organisation_id=account.organisation_id,
            security_stamp=account.security_stamp,
            created_at=now,
            last_seen=now,
            expires_at=now + timedelta(seconds=self.settings.session_max_seconds),
        )
        await self.repo.insert_session(session)
        self.metrics.sign_ins.labels("ok").inc()
        return NewSession(token=token, session=session)

    async def _throttle(self, attempt: SignInAttempt) -> None:
        """Raise SignInRefused if this address, or this address on this account, must wait."""
        s, now = self.settings, attempt.at
        since = now - timedelta(seconds=max(s.sign_in_window_seconds, s.lockout_seconds))
        window_start = now - timedelta(seconds=s.sign_in_window_seconds)
        from_address, _ = await self.repo.attempts_since(
            since=window_start, exclude=attempt.id, address=attempt.address
        )
        if from_address >= s.address_max_failed_sign_ins:
            # Free again when enough of its failures have left the window.
            oldest = await self.repo.nth_oldest_attempt(
                address=attempt.address,
                since=window_start,
                exclude=attempt.id,
                skip=from_address - s.address_max_failed_sign_ins,
            )
            until = (oldest or now) + timedelta(seconds=s.sign_in_window_seconds)
            raise SignInRefused("throttled", retry_after=_seconds_until(until, now))
        pair = await self.repo.attempts_since(
            since=since, exclude=attempt.id, username=attempt.username, address=attempt.address
        )
        on_account: tuple[int, datetime | None] = (0, None)
        if pair[0]:  # only an address that has failed this account is ever held back by it
            on_account = await self.repo.attempts_since(
                since=window_start, exclude=attempt.id, username=attempt.username
            )
        refused = account_wait(now=now, settings=s, pair=pair, account=on_account)
        if refused is not None:
            raise refused

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
        account = await self.repo.get_account(session.username)
        if account is None or not still_granted(session, account):
            # Disabled, or its role, counties, organisation or password changed since.
            await self.repo.delete_session(session.id)
            log.info("session ended: its account changed")
            return None
        if now - session.last_seen >= _TOUCH_EVERY:
            await self.repo.touch_session(session.id, now)
        return session

    async def sign_out(self, *, token: str | None) -> None:
        if token:
            await self.repo.delete_session(token_digest(token))

    async def sweep_sessions(self) -> int:
        """Delete sessions past their idle or absolute limit, and sign-in failures that no
        longer count."""
        now = self.clock.now()
        keep = max(self.settings.sign_in_window_seconds, self.settings.lockout_seconds)
        await self.repo.delete_attempts_before(now - timedelta(seconds=keep))
        return await self.repo.delete_stale_sessions(
            idle_before=now - timedelta(seconds=self.settings.session_idle_seconds), now=now
        )


def still_granted(session: SessionDoc, account: Account) -> bool:
    """The session's claims are still the account's (checked on every request)."""
    return (
        account.active
        and account.security_stamp == session.security_stamp
        and account.role == session.role
        and list(account.counties) == list(session.counties)
        and account.mediator_id == session.mediator_id
        and account.organisation_id == session.organisation_id
    )
