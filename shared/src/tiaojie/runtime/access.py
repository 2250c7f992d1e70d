"""Who may do what on the broker (README: "Trust at the broker"), generated from the topic contract.

One principal per service: it may WRITE exactly the topics it produces and the
dead-letter topics of what it consumes, READ exactly the topics it consumes, and join only
consumer groups under its own group name. One principal per agency: WRITE its inbound
topic, READ its outcomes topic, consumer groups under `agency.<id>.`. A system that submits
disputes: WRITE on the submissions topic, nothing else. Referral registers agencies through
a separate provisioning principal (creating credentials and ACLs needs ALTER on the cluster
in Kafka; its data-plane identity never holds it).

Everything here is configuration of Kafka's own SCRAM credentials and StandardAuthorizer
ACLs, applied through the broker's admin API (librdkafka's AdminClient: aiokafka has no
ACL or SCRAM calls). No authentication of our own sits on the broker path.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tiaojie.contracts import topics
from tiaojie.runtime.logging import get_logger
from tiaojie.runtime.settings import KafkaCredentials, RuntimeSettings

log = get_logger(__name__)

Resource = Literal["topic", "group", "cluster"]
Operation = Literal["read", "write", "describe", "create", "alter", "delete"]

SERVICES: tuple[str, ...] = tuple(topics.PRODUCED_BY)
PROVISIONER = "referral-provisioner"
# SCRAM iterations for credentials we create (Kafka's minimum is 4096).
SCRAM_ITERATIONS = 8192


@dataclass(frozen=True, order=True)
class Grant:
    """One ALLOW ACL: principal (a SCRAM user name) may `operation` on a resource."""

    principal: str
    resource: Resource
    name: str
    operation: Operation
    prefixed: bool = False

    def __str__(self) -> str:
        kind = "prefix" if self.prefixed else "literal"
        return f"User:{self.principal} {self.operation.upper()} {self.resource}:{self.name} ({kind})"


def _ns(settings: RuntimeSettings, name: str) -> str:
    return f"{settings.namespace}.{name}" if settings.namespace else name


def service_principal(settings: RuntimeSettings, service: str) -> str:
    """The SCRAM user of a service in this deployment (its consumer group's name)."""
    return settings.group(service)


def provisioner_principal(settings: RuntimeSettings) -> str:
    return _ns(settings, f"tiaojie-{PROVISIONER}")


def agency_principal(settings: RuntimeSettings, agency_id: str, generation: int = 1) -> str:
    """The SCRAM user of a registered agency or submitting system. Every rotation makes a
    new one (`agency-<id>.<n>`) and takes the ACLs away from the old: Kafka checks ACLs on
    every request, so a connection the old credential opened can do nothing from then on."""
    name = f"agency-{agency_id}" if generation <= 1 else f"agency-{agency_id}.{generation}"
    return _ns(settings, name)


def agency_group_prefix(settings: RuntimeSettings, agency_id: str) -> str:
    return settings.topic(f"agency.{agency_id}.")


def deployment_topics(settings: RuntimeSettings) -> list[str]:
    """Every contract topic of this deployment and its DLQ (agency topics aside)."""
    return [settings.topic(t) for name in topics.ALL_TOPICS for t in (name, topics.dlq(name))]


def service_grants(settings: RuntimeSettings, service: str) -> list[Grant]:
    """A service's ACLs, from PRODUCED_BY, INBOUND_OWNED_BY and CONSUMED_BY."""
    user = service_principal(settings, service)
    produced = topics.PRODUCED_BY[service]
    consumed = topics.CONSUMED_BY[service]
    grants: set[Grant] = set()
    for name in produced:
        grants |= {Grant(user, "topic", settings.topic(name), op) for op in ("write", "create")}
    for name in topics.INBOUND_OWNED_BY.get(service, ()):
        grants.add(Grant(user, "topic", settings.topic(name), "create"))
    for name in consumed:
        grants.add(Grant(user, "topic", settings.topic(name), "read"))
        # A consumer dead-letters what it cannot handle: the DLQs are the consumers'.
        grants |= {Grant(user, "topic", settings.topic(topics.dlq(name)), op) for op in ("write", "create")}
    grants.add(Grant(user, "group", settings.group(service), "read", prefixed=True))
    if service == "stats":
        # The Kafka monitor: sizes of every topic and DLQ, lag of every service's group.
        # DESCRIBE shows offsets, never a record.
        grants |= {Grant(user, "topic", t, "describe") for t in deployment_topics(settings)}
        grants |= {Grant(user, "group", settings.group(s), "describe") for s in SERVICES}
    return sorted(grants)


def referral_agency_grants(settings: RuntimeSettings, agency_id: str) -> list[Grant]:
    """What the referral service may do on one agency's topics: read its referrals,
    dead-letter them, answer on its outcomes topic."""
    user = service_principal(settings, "referral")
    inbound = settings.topic(topics.agency_referrals(agency_id))
    return sorted(
        {
            Grant(user, "topic", inbound, "read"),
            Grant(user, "topic", topics.dlq(inbound), "write"),
            Grant(user, "topic", topics.dlq(inbound), "create"),
            Grant(user, "topic", settings.topic(topics.agency_outcomes(agency_id)), "write"),
        }
    )


def agency_grants(
    settings: RuntimeSettings, agency_id: str, *, system: bool = False, principal: str | None = None
) -> list[Grant]:
    """An agency writes its inbound topic and reads its outcomes; a system only submits."""
    user = principal or agency_principal(settings, agency_id)
    if system:
        return [Grant(user, "topic", settings.topic(topics.SUBMISSIONS), "write")]
    return sorted(
        {
            Grant(user, "topic", settings.topic(topics.agency_referrals(agency_id)), "write"),
            Grant(user, "topic", settings.topic(topics.agency_outcomes(agency_id)), "read"),
            Grant(user, "group", agency_group_prefix(settings, agency_id), "read", prefixed=True),
        }
    )


def provisioner_grants(settings: RuntimeSettings) -> list[Grant]:
    """Creating SCRAM credentials and ACLs is ALTER on the cluster (DESCRIBE to read them);
    agency topics are created under the deployment's `agency.` prefix only."""
    user = provisioner_principal(settings)
    prefix = settings.topic("agency.")
    return sorted(
        {
            Grant(user, "cluster", "kafka-cluster", "alter"),
            Grant(user, "cluster", "kafka-cluster", "describe"),
            Grant(user, "topic", prefix, "create", prefixed=True),
            Grant(user, "topic", prefix, "describe", prefixed=True),
        }
    )


# librdkafka calls the cluster resource BROKER.
_LIBRDKAFKA_RESOURCE = {"cluster": "BROKER"}
_RESOURCE_OF = {"BROKER": "cluster"}


def new_password() -> str:
    return secrets.token_urlsafe(24)


async def until_accepted(credentials: KafkaCredentials, *, timeout: float = 15.0) -> None:
    """Wait until the broker accepts a credential just created or changed: the controller
    commits it at once, the broker applies its metadata a moment later, and a client that
    logs in within that moment is refused."""
    from aiokafka.conn import create_conn
    from aiokafka.errors import KafkaError

    from tiaojie.runtime.kafka import client_kwargs

    kwargs = client_kwargs(credentials)
    host, _, port = kwargs.pop("bootstrap_servers")[0].rpartition(":")
    deadline = asyncio.get_running_loop().time() + timeout
    delay = 0.02
    while True:
        try:
            conn = await create_conn(host, int(port), request_timeout_ms=5000, **kwargs)
            conn.close()
            return
        except (KafkaError, OSError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"the broker does not accept {credentials.username!r} yet") from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)


class BrokerAdmin:
    """The broker's admin API for credentials, ACLs and topics (async over librdkafka)."""

    def __init__(self, credentials: KafkaCredentials, *, timeout: float = 15.0) -> None:
        from confluent_kafka.admin import AdminClient

        self._timeout = timeout
        config: dict[str, Any] = {
            "bootstrap.servers": credentials.bootstrap,
            "security.protocol": credentials.security_protocol.lower(),
            "socket.timeout.ms": int(timeout * 1000),
            # librdkafka would log every refused connection to stderr (an idle client keeps
            # reconnecting); every call here raises what went wrong, and that is logged.
            "log_level": 0,
        }
        if credentials.security_protocol != "PLAINTEXT":
            config |= {
                "sasl.mechanism": credentials.sasl_mechanism,
                "sasl.username": credentials.username,
                "sasl.password": credentials.password,
            }
        if credentials.ca_file:
            config["ssl.ca.location"] = credentials.ca_file
        self.credentials = credentials
        self._client = AdminClient(config)

    async def _wait(self, futures: Iterable[concurrent.futures.Future[Any]]) -> list[Any]:
        return list(await asyncio.gather(*(asyncio.wrap_future(f) for f in futures)))

    # -- SCRAM credentials -------------------------------------------------------------
    async def set_password(self, user: str, password: str) -> None:
        """Create or replace a user's SCRAM-SHA-512 credential (Kafka stores it salted)."""
        from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
        upsert = UserScramCredentialUpsertion(user, info, password.encode())
        futures = self._client.alter_user_scram_credentials([upsert], request_timeout=self._timeout)
        await self._wait(futures.values())

    async def disable_user(self, user: str) -> None:
        """Make a user's credential unusable: a new random password that nobody is told.

        Not a deletion. Measured on Kafka 4.4.0 (KRaft, combined mode): after any SCRAM
        credential is deleted (AlterUserScramCredentials with a deletion, from librdkafka or
        from Kafka's own Java admin client alike), the next broker restart authenticates
        nobody by SCRAM, the administrator and the broker itself included. An upsert is
        replayed correctly, so revocation overwrites instead."""
        await self.set_password(user, secrets.token_urlsafe(48))

    # -- ACLs ----------------------------------------------------------------------------
    @staticmethod
    def _binding(grant: Grant) -> Any:
        from confluent_kafka.admin import (
            AclBinding,
            AclOperation,
            AclPermissionType,
            ResourcePatternType,
            ResourceType,
        )

        return AclBinding(
            ResourceType[_LIBRDKAFKA_RESOURCE.get(grant.resource, grant.resource.upper())],
            grant.name,
            ResourcePatternType.PREFIXED if grant.prefixed else ResourcePatternType.LITERAL,
            f"User:{grant.principal}",
            "*",
            AclOperation[grant.operation.upper()],
            AclPermissionType.ALLOW,
        )

    @staticmethod
    def _grant(binding: Any) -> Grant | None:
        from confluent_kafka.admin import AclPermissionType, ResourcePatternType

        if binding.permission_type != AclPermissionType.ALLOW or not binding.principal.startswith("User:"):
            return None
        return Grant(
            principal=binding.principal.removeprefix("User:"),
            resource=_RESOURCE_OF.get(binding.restype.name, binding.restype.name.lower()),
            name=binding.name,
            operation=binding.operation.name.lower(),
            prefixed=binding.resource_pattern_type == ResourcePatternType.PREFIXED,
        )

    async def grant(self, grants: Iterable[Grant]) -> None:
        """Create ACLs (creating one that exists is a no-op); returns once the broker
        applies them."""
        wanted = list(dict.fromkeys(grants))
        if wanted:
            futures = self._client.create_acls(
                [self._binding(g) for g in wanted], request_timeout=self._timeout
            )
            await self._wait(futures.values())
            await self._until_applied(wanted, present=True)

    async def _until_applied(self, changed: list[Grant], *, present: bool) -> None:
        """The controller commits an ACL change at once and the broker's authorizer applies
        it a moment later (DescribeAcls is answered from that authorizer): wait for it, so
        that whoever is told "granted" or "revoked" finds it so."""
        principals = {g.principal for g in changed}
        deadline = asyncio.get_running_loop().time() + self._timeout
        delay = 0.02
        while True:
            held: set[Grant] = set()
            for principal in principals:
                held |= set(await self.grants(principal=principal))
            if all((g in held) == present for g in changed):
                return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("the broker did not apply an ACL change in time")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def grants(self, *, principal: str | None = None) -> list[Grant]:
        """The ALLOW ACLs on the broker, of one principal or of all."""
        from confluent_kafka.admin import (
            AclBindingFilter,
            AclOperation,
            AclPermissionType,
            ResourcePatternType,
            ResourceType,
        )

        # None matches any name, principal or host (librdkafka's filter semantics).
        anything: Any = None
        flt = AclBindingFilter(
            ResourceType.ANY,
            anything,
            ResourcePatternType.ANY,
            f"User:{principal}" if principal else anything,
            anything,
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        future = self._client.describe_acls(flt, request_timeout=self._timeout)
        found = [self._grant(b) for b in await asyncio.wrap_future(future)]
        return sorted(g for g in found if g is not None)

    async def revoke(self, grants: Iterable[Grant]) -> None:
        """Delete exactly these ACLs; returns once the broker applies it."""
        from confluent_kafka.admin import AclBindingFilter

        doomed = list(dict.fromkeys(grants))
        filters = []
        for grant in doomed:
            b = self._binding(grant)
            filters.append(
                AclBindingFilter(
                    b.restype,
                    b.name,
                    b.resource_pattern_type,
                    b.principal,
                    b.host,
                    b.operation,
                    b.permission_type,
                )
            )
        if filters:
            futures = self._client.delete_acls(filters, request_timeout=self._timeout)
            await self._wait(futures.values())
            await self._until_applied(doomed, present=False)

    async def revoke_principal(self, principal: str) -> int:
        """Delete every ACL of a principal; returns how many there were."""
        mine = await self.grants(principal=principal)
        await self.revoke(mine)
        return len(mine)

    # -- topics --------------------------------------------------------------------------
    async def topics(self) -> set[str]:
        metadata = await asyncio.to_thread(self._client.list_topics, timeout=self._timeout)
        return set(metadata.topics)

    async def create_topics(
        self, names: Iterable[str], *, partitions: int, replication_factor: int
    ) -> list[str]:
        """Create the topics that do not exist yet; returns those created."""
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import NewTopic

        existing = await self.topics()
        missing = [t for t in dict.fromkeys(names) if t not in existing]
        if not missing:
            return []
        new = [NewTopic(t, num_partitions=partitions, replication_factor=replication_factor) for t in missing]
        futures = self._client.create_topics(
            new, operation_timeout=self._timeout, request_timeout=self._timeout
        )
        created = []
        for topic, future in futures.items():
            try:
                await asyncio.wrap_future(future)
                created.append(topic)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
        return created

    async def delete_topics(self, names: Iterable[str]) -> None:
        wanted = list(dict.fromkeys(names))
        if wanted:
            futures = self._client.delete_topics(wanted, operation_timeout=self._timeout)
            await self._wait(futures.values())


class PasswordBook:
    """The passwords of a deployment's own principals (services, provisioner), kept where
    the caller says: the local mesh keeps them under .data (mode 0600), a test session in
    memory. Passwords of agencies are never kept: they are shown once, at registration."""

    def __init__(self, known: Mapping[str, str] | None = None) -> None:
        self._known = dict(known or {})
        self.created: list[str] = []

    def password(self, principal: str) -> str:
        if principal not in self._known:
            self._known[principal] = new_password()
            self.created.append(principal)
        return self._known[principal]

    def as_dict(self) -> dict[str, str]:
        return dict(self._known)


@dataclass(frozen=True)
class Deployment:
    """The credentials of one deployment's service principals and provisioner."""

    services: dict[str, KafkaCredentials]
    provisioner: KafkaCredentials

    def _provisioner_fields(self, service: str) -> dict[str, str]:
        if service != "referral":
            return {}
        return {
            "kafka_provisioner_username": self.provisioner.username or "",
            "kafka_provisioner_password": self.provisioner.password or "",
        }

    def settings_overrides(self, service: str) -> dict[str, Any]:
        """Settings fields of a service in this deployment (referral's provisioner too)."""
        return {**self.services[service].settings_overrides(), **self._provisioner_fields(service)}

    def environment(self, service: str) -> dict[str, str]:
        """The same as TIAOJIE_* variables of a service process."""
        extra = {f"TIAOJIE_{k.upper()}": v for k, v in self._provisioner_fields(service).items()}
        return {**self.services[service].environment(), **extra}


async def provision(
    admin: BrokerAdmin,
    settings: RuntimeSettings,
    book: PasswordBook,
) -> Deployment:
    """Make a deployment's broker side exist: its topics, a SCRAM credential per service and
    for the provisioner (passwords from `book`), and exactly the ACLs of the contract.
    Idempotent; ACLs a principal holds beyond the contract (but per-agency ones) are removed,
    so a change of the contract takes rights away as well as granting them."""
    await admin.create_topics(
        deployment_topics(settings),
        partitions=settings.partitions,
        replication_factor=settings.replication_factor,
    )
    base = admin.credentials
    # Per-agency ACLs are referral's to grant and take (at registration): left alone here.
    agency_prefix = settings.topic("agency.")
    services: dict[str, KafkaCredentials] = {}
    for service in SERVICES:
        user = service_principal(settings, service)
        password = book.password(user)
        await admin.set_password(user, password)
        wanted = set(service_grants(settings, service))
        held = set(await admin.grants(principal=user))
        stale = {g for g in held - wanted if not g.name.startswith(agency_prefix)}
        await admin.revoke(stale)
        await admin.grant(wanted - held)
        services[service] = base.as_user(user, password)
    user = provisioner_principal(settings)
    password = book.password(user)
    await admin.set_password(user, password)
    await admin.grant(provisioner_grants(settings))
    deployment = Deployment(services=services, provisioner=base.as_user(user, password))
    await asyncio.gather(*(until_accepted(c) for c in [*services.values(), deployment.provisioner]))
    return deployment


async def drop_principals(admin: BrokerAdmin, settings: RuntimeSettings) -> None:
    """Delete every ACL of a namespace (tests and benchmarks clean up). Its SCRAM users
    stay, holding no right (see BrokerAdmin.disable_user for why none is deleted)."""
    if not settings.namespace:
        raise ValueError("refusing to drop the principals of the default namespace")
    prefix = f"{settings.namespace}."
    doomed = [g for g in await admin.grants() if g.principal.startswith(prefix) or g.name.startswith(prefix)]
    await admin.revoke(doomed)
