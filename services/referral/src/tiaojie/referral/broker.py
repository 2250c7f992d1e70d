"""The broker side of an agency: its topics, its SCRAM credential and its ACLs, and the
referral service's own ACLs on those topics. Applied through the provisioning principal
(see ReferralSettings); the password is made here, handed to the caller once and kept
nowhere but in the broker, which stores it salted (SCRAM)."""

from __future__ import annotations

from dataclasses import dataclass

from tiaojie.contracts import topics
from tiaojie.contracts.common import AgencyKind
from tiaojie.referral.settings import ReferralSettings
from tiaojie.runtime.access import (
    BrokerAdmin,
    agency_grants,
    agency_group_prefix,
    agency_principal,
    new_password,
    referral_agency_grants,
    until_accepted,
)
from tiaojie.runtime.errors import Unavailable
from tiaojie.runtime.kafka import create_physical_topics
from tiaojie.runtime.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class IssuedCredential:
    """What an agency is told, once: where the broker is and how to log in."""

    bootstrap: str
    security_protocol: str
    sasl_mechanism: str
    username: str
    password: str
    consumer_group_prefix: str | None


class AgencyAccess:
    """Opens, rotates and closes an agency's access to the broker."""

    def __init__(self, settings: ReferralSettings) -> None:
        self.settings = settings
        creds = settings.provisioner_credentials()
        self._admin = BrokerAdmin(creds) if creds else None

    @property
    def issues_credentials(self) -> bool:
        """False only on a broker without authentication (nothing to issue)."""
        return self._admin is not None or self.settings.kafka_security_protocol != "PLAINTEXT"

    def principal(self, agency_id: str, generation: int = 1) -> str:
        return agency_principal(self.settings, agency_id, generation)

    def _required(self) -> BrokerAdmin:
        if self._admin is None:
            raise Unavailable(
                "未配置消息总线的机构凭据签发账号，暂不能登记机构",
                "the broker provisioning principal is not configured (TIAOJIE_KAFKA_PROVISIONER_*)",
            )
        return self._admin

    async def prepare(self, agency_id: str, kind: AgencyKind, *, principal: str | None) -> None:
        """Topics and ACLs, the agency's for `principal` (idempotent; no password change)."""
        system = kind == AgencyKind.SYSTEM
        if self._admin is None and self.settings.kafka_security_protocol == "PLAINTEXT":
            # A broker without authentication (a developer's own): topics only.
            if not system:
                await create_physical_topics(self.settings, self._topics(agency_id))
            return
        admin = self._required()
        if not system:
            await admin.create_topics(
                self._topics(agency_id),
                partitions=self.settings.partitions,
                replication_factor=self.settings.replication_factor,
            )
            await admin.grant(referral_agency_grants(self.settings, agency_id))
        if principal is not None:
            await admin.grant(agency_grants(self.settings, agency_id, system=system, principal=principal))

    async def issue(self, agency_id: str, kind: AgencyKind, *, generation: int) -> IssuedCredential:
        """A new principal with the agency's ACLs and a new password; the principals of
        earlier generations lose their ACLs (open connections included) and their
        passwords (new logins)."""
        admin = self._required()
        user = self.principal(agency_id, generation)
        await self.prepare(agency_id, kind, principal=user)
        password = new_password()
        await admin.set_password(user, password)
        # Whoever is given it may log in at once.
        await until_accepted(admin.credentials.as_user(user, password))
        await self._retire(agency_id, range(1, generation))
        log.info("agency credential issued", agency_id=agency_id, principal=user)
        return IssuedCredential(
            bootstrap=self.settings.agency_kafka_bootstrap or self.settings.kafka_bootstrap,
            security_protocol=self.settings.agency_kafka_security_protocol
            or self.settings.kafka_security_protocol,
            sasl_mechanism="SCRAM-SHA-512",
            username=user,
            password=password,
            consumer_group_prefix=None
            if kind == AgencyKind.SYSTEM
            else agency_group_prefix(self.settings, agency_id),
        )

    async def revoke(self, agency_id: str, *, generation: int) -> None:
        """Every principal the agency has had, up to `generation`, loses its ACLs and its
        password: it can neither log in nor, on a connection still open, read or write."""
        self._required()
        removed = await self._retire(agency_id, range(1, generation + 1))
        log.info("agency credential revoked", agency_id=agency_id, acls=removed)

    async def _retire(self, agency_id: str, generations: range) -> int:
        if not generations:
            return 0
        admin = self._required()
        users = {self.principal(agency_id, g) for g in generations}
        doomed = [g for g in await admin.grants() if g.principal in users]
        await admin.revoke(doomed)
        # Passwords nobody knows (see BrokerAdmin.disable_user: SCRAM users are never deleted).
        for user in sorted(users):
            await admin.disable_user(user)
        return len(doomed)

    def _topics(self, agency_id: str) -> list[str]:
        inbound = self.settings.topic(topics.agency_referrals(agency_id))
        return [inbound, topics.dlq(inbound), self.settings.topic(topics.agency_outcomes(agency_id))]
