"""The broker side of an agency: its topics, its SCRAM credential and its ACLs, and the
referral service's own ACLs on those topics. Applied through the provisioning principal
(see ReferralSettings); the password is made here, handed to the caller once and kept
nowhere but in the broker, which stores it salted (SCRAM)."""

from __future__ import annotations

import dataclasses
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

    def principal(self, agency_id: str) -> str:
        return agency_principal(self.settings, agency_id)

    def _required(self) -> BrokerAdmin:
        if self._admin is None:
            raise Unavailable(
                "未配置消息总线的机构凭据签发账号，暂不能登记机构",
                "the broker provisioning principal is not configured (TIAOJIE_KAFKA_PROVISIONER_*)",
            )
        return self._admin

    async def prepare(self, agency_id: str, kind: AgencyKind) -> None:
        """Topics and ACLs (idempotent; the password is left as it is)."""
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
        await admin.grant(agency_grants(self.settings, agency_id, system=system))

    async def issue(self, agency_id: str, kind: AgencyKind) -> IssuedCredential:
        """Topics, ACLs and a new password (an existing one stops working)."""
        admin = self._required()
        await self.prepare(agency_id, kind)
        password = new_password()
        user = self.principal(agency_id)
        await admin.set_password(user, password)
        # Whoever is given it may log in at once.
        await until_accepted(dataclasses.replace(admin.credentials, username=user, password=password))
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

    async def revoke(self, agency_id: str) -> None:
        """The agency's ACLs are deleted and its password replaced by one nobody knows: it
        can neither log in nor, on a connection still open, read or write."""
        admin = self._required()
        user = self.principal(agency_id)
        removed = await admin.revoke_principal(user)
        await admin.disable_user(user)
        log.info("agency credential revoked", agency_id=agency_id, principal=user, acls=removed)

    def _topics(self, agency_id: str) -> list[str]:
        inbound = self.settings.topic(topics.agency_referrals(agency_id))
        return [inbound, topics.dlq(inbound), self.settings.topic(topics.agency_outcomes(agency_id))]
