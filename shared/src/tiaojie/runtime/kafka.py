"""Kafka: the broker factory, explicit topic creation and the event publisher."""

from __future__ import annotations

import asyncio
import logging
import ssl
import traceback
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream import BaseMiddleware
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from prometheus_client import CollectorRegistry, Counter

from tiaojie.contracts.envelope import CONTENT_TYPE, CloudEvent
from tiaojie.contracts.topics import dlq
from tiaojie.runtime.logging import get_logger
from tiaojie.runtime.pii import scrub
from tiaojie.runtime.settings import KafkaCredentials, RuntimeSettings

log = get_logger(__name__)


class KafkaAccessError(ValueError):
    """The settings do not say how to authenticate to the broker."""


@cache
def _ssl_context(ca_file: str | None) -> ssl.SSLContext:
    # Verifies the broker's certificate and host name; the deployment's CA when given.
    return ssl.create_default_context(cafile=ca_file)


def _credentials(source: RuntimeSettings | KafkaCredentials) -> KafkaCredentials:
    creds = source.kafka_credentials() if isinstance(source, RuntimeSettings) else source
    if creds.security_protocol != "PLAINTEXT" and not (creds.username and creds.password):
        raise KafkaAccessError(
            f"{creds.security_protocol} needs TIAOJIE_KAFKA_USERNAME and TIAOJIE_KAFKA_PASSWORD "
            "(`tiaojie kafka client-config --principal NAME` prints a local principal's)"
        )
    return creds


def client_kwargs(source: RuntimeSettings | KafkaCredentials) -> dict[str, Any]:
    """aiokafka client arguments (bootstrap and security) for these settings or credentials."""
    creds = _credentials(source)
    kwargs: dict[str, Any] = {
        "bootstrap_servers": creds.bootstrap.split(","),
        "security_protocol": creds.security_protocol,
    }
    if creds.security_protocol == "SASL_SSL":
        kwargs["ssl_context"] = _ssl_context(creds.ca_file)
    if creds.security_protocol != "PLAINTEXT":
        kwargs |= {
            "sasl_mechanism": creds.sasl_mechanism,
            "sasl_plain_username": creds.username,
            "sasl_plain_password": creds.password,
        }
    return kwargs


def broker_security(settings: RuntimeSettings) -> BaseSecurity | None:
    """FastStream's form of the same security settings."""
    creds = _credentials(settings)
    if creds.security_protocol == "PLAINTEXT":
        return None
    context = _ssl_context(creds.ca_file) if creds.security_protocol == "SASL_SSL" else None
    kind = {"SCRAM-SHA-512": SASLScram512, "SCRAM-SHA-256": SASLScram256, "PLAIN": SASLPlaintext}
    assert creds.username is not None and creds.password is not None
    return kind[creds.sasl_mechanism](
        username=creds.username,
        password=creds.password,
        ssl_context=context,
        use_ssl=creds.security_protocol == "SASL_SSL",
    )


class SafetyNet(BaseMiddleware):
    """Broker middleware: an error raised outside the reliable wrapper (the framework's,
    not a message's) is logged and delayed before the batch is sought back and retried."""

    delay = 5.0

    async def consume_scope(self, call_next: Any, msg: Any) -> Any:
        try:
            return await call_next(msg)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error(
                "consumer failed outside the handler; batch will be redelivered",
                error=_describe(exc),
            )
            await asyncio.sleep(self.delay)
            raise


def _describe(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = " <- ".join(f"{f.name}:{f.lineno}" for f in reversed(frames))
    return scrub(f"{type(exc).__name__}: {exc} at {where}")


def make_broker(
    settings: RuntimeSettings, *, service: str, registry: CollectorRegistry | None = None
) -> KafkaBroker:
    """A FastStream broker with the reliability contract's producer settings.

    acks=all with the idempotent producer; topics are never auto-created (the project
    creates them with partition counts from settings); FastStream's Prometheus
    middleware measures every message when a registry is given.
    """
    middlewares: list[Any] = [SafetyNet]
    if registry is not None:
        middlewares.append(KafkaPrometheusMiddleware(registry=registry, app_name=service))
    return KafkaBroker(
        settings.kafka_bootstrap.split(","),
        security=broker_security(settings),
        client_id=f"tiaojie-{service}",
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        allow_auto_create_topics=False,
        metadata_max_age_ms=settings.kafka_metadata_max_age_ms,
        graceful_timeout=settings.graceful_timeout,
        middlewares=middlewares,
        description=f"Tiaojie {service} service",
        # FastStream logs every message at this level: keep it below INFO at our volumes.
        log_level=logging.DEBUG,
    )


async def ensure_topics(
    settings: RuntimeSettings,
    names: Iterable[str],
    *,
    with_dlq: bool = True,
    partitions: int | None = None,
) -> list[str]:
    """Create contract topics (and their DLQs) in this deployment; returns those created."""
    wanted: list[str] = []
    for name in names:
        wanted.append(settings.topic(name))
        if with_dlq:
            wanted.append(settings.topic(dlq(name)))
    return await create_physical_topics(settings, wanted, partitions=partitions)


async def create_physical_topics(
    settings: RuntimeSettings, physical: Sequence[str], *, partitions: int | None = None
) -> list[str]:
    """Create topics by their physical names, tolerating ones that exist."""
    admin = AIOKafkaAdminClient(**client_kwargs(settings), request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in dict.fromkeys(physical) if t not in existing]
        if not missing:
            return []
        new = [
            NewTopic(
                name=t,
                num_partitions=partitions or settings.partitions,
                replication_factor=settings.replication_factor,
            )
            for t in missing
        ]
        try:
            await admin.create_topics(new, timeout_ms=15000)
        except TopicAlreadyExistsError:
            pass  # another replica created them first
        log.info("topics created", topics=missing)
        return missing
    finally:
        await admin.close()


class EventPublisher:
    """Publishes CloudEvents keyed by their subject, waiting for acks=all."""

    def __init__(
        self, broker: KafkaBroker, settings: RuntimeSettings, *, registry: CollectorRegistry | None = None
    ) -> None:
        self._broker = broker
        self._settings = settings
        self._declared: set[str] = set()
        self.skipped = (
            Counter(
                "tiaojie_outbox_skipped",
                "Revisions a sweep could not publish and left for the next sweep, by collection",
                ["collection"],
                registry=registry,
            )
            if registry is not None
            else None
        )

    def count_skipped(self, collection: str) -> None:
        """A sweep left a revision it could not publish (alerted on: it is retried each sweep)."""
        if self.skipped is not None:
            self.skipped.labels(collection).inc()

    def declare(self, topic: str, *, title: str, description: str, schema: Any = None) -> None:
        """Declare a publisher so the AsyncAPI document lists what this service produces."""
        if topic in self._declared:
            return
        self._declared.add(topic)
        self._broker.publisher(
            self._settings.topic(topic),
            title=title,
            description=description,
            schema=schema or CloudEvent,
        )

    async def publish(self, topic: str, event: CloudEvent, *, key: str | None = None) -> None:
        """Publish one event and wait until the broker acknowledged it."""
        await self.publish_raw(
            self._settings.topic(topic), event.to_bytes(), key=key or event.subject or event.id
        )

    async def publish_many(self, items: Sequence[tuple[str, CloudEvent]]) -> None:
        """Publish several events concurrently (the producer batches them) and wait for all."""
        await asyncio.gather(*(self.publish(topic, event) for topic, event in items))

    async def publish_raw(
        self,
        physical_topic: str,
        value: bytes,
        *,
        key: str | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Publish bytes to a physical topic name (used by the outbox and the DLQ)."""
        await self._broker.publish(
            value,
            topic=physical_topic,
            key=key.encode() if key else None,
            headers={"content-type": CONTENT_TYPE, **(headers or {})},
        )
