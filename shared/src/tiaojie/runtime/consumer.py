"""Reliable consumption: the wrapper every Kafka handler of the mesh runs inside.

The contract (DESIGN.md §4):
- offsets are committed only after every message of a batch was handled or
  dead-lettered (AckPolicy.ACK on a batch subscriber, auto-commit off);
- a message that cannot be parsed goes to `<topic>.dlq` at once, with its reason and its
  original bytes; one whose handler keeps failing goes there after bounded retries with
  backoff; the partition keeps flowing;
- infrastructure failures (database or broker unreachable) are retried with capped
  backoff for as long as they last and never dead-lettered: nothing is committed past a
  failed write;
- on shutdown, a handler cancelled after the grace period is not committed: the batch is
  redelivered, and handlers are idempotent so that redelivery has no second effect.

Within a batch, messages with the same key are handled in order, messages with different
keys concurrently (bounded), so one case stays in order while throughput scales.

Batch-first handlers (`on_batch`) get every decoded event of a fetched batch in one call,
in offset order (so each key's events in order), to load what they need in few reads,
decide in memory and write and publish together. If that call fails, the batch is
handled again one message at a time under the same contract (retries, then the DLQ), so
a poison message cannot hold its batch: a batch handler must therefore be correct for
any sub-sequence of a batch that keeps each key's order, which idempotent handlers are.
"""

# No `from __future__ import annotations` here: FastStream resolves the batch handler's
# annotations at call time, and a string annotation it cannot resolve fails every message.

import asyncio
import hashlib
import traceback
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError, WithJsonSchema
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from tiaojie.contracts import topics
from tiaojie.contracts.envelope import CloudEvent, EventData, decode_event
from tiaojie.contracts.topics import dlq
from tiaojie.runtime.errors import DomainError, Invalid, field_errors
from tiaojie.runtime.kafka import EventPublisher
from tiaojie.runtime.logging import get_logger
from tiaojie.runtime.pii import scrub
from tiaojie.runtime.settings import RuntimeSettings

log = get_logger(__name__)

Handler = Callable[[CloudEvent, Any], Awaitable[None]]


# The most of an original a dead-letter copy keeps: well under the producer's and the
# broker's 1 MiB, so that the copy and its headers always fit.
DLQ_VALUE_LIMIT = 512 * 1024


@dataclass(frozen=True)
class Delivery:
    """One decoded, validated message of a batch."""

    record: ConsumerRecord
    event: CloudEvent
    data: Any

    @property
    def key(self) -> bytes:
        return self.record.key if self.record.key is not None else self.event.id.encode()


# A batch handler may return the messages it refused, by index: a DeadLetter, Invalid or
# DomainError goes to the DLQ at once; any other error sends that message (alone) through
# the one-at-a-time path with its retries.
BatchHandler = Callable[[list[Delivery]], Awaitable["Mapping[int, BaseException] | None"]]
RawHandler = Callable[[ConsumerRecord], Awaitable[None]]
Probe = Callable[[], Awaitable[bool]]

# MongoDB error codes that mean "the server is not able to serve right now".
_TRANSIENT_CODES = frozenset({6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436})


class DeadLetter(Exception):
    """Raised by a handler to send its input to the DLQ at once, with a reason."""

    def __init__(self, reason: str, *, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def is_transient(exc: BaseException) -> bool:
    """True for failures of the infrastructure rather than of the message."""
    if isinstance(exc, ConnectionFailure | KafkaError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, OperationFailure):
        return exc.code in _TRANSIENT_CODES or exc.has_error_label("RetryableWriteError")
    if isinstance(exc, PyMongoError):
        return exc.has_error_label("RetryableWriteError") or exc.timeout
    return False


@dataclass
class _Route:
    model: type[EventData]
    handler: Handler
    name: str


@dataclass
class _BatchRoute:
    models: dict[str, type[EventData]]
    handler: BatchHandler
    name: str


@dataclass
class _Subscription:
    topic: str  # contract name, without namespace
    routes: dict[str, list[_Route]] = field(default_factory=dict)
    batch: _BatchRoute | None = None
    raw: RawHandler | None = None
    concurrency: int | None = None
    title: str = ""
    pattern: str | None = None  # a regex over physical topic names (raw subscriptions only)
    documents: tuple[type[EventData], ...] = ()  # payloads a raw subscription accepts (AsyncAPI)


class ConsumerMetrics:
    """Counters of what the reliable consumer did, labelled by topic and outcome."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.service = service
        self.handled = Counter(
            "tiaojie_events_handled_total",
            "Events taken from Kafka, by outcome (handled, ignored, dead_lettered)",
            ["service", "topic", "outcome"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "tiaojie_dead_letters_total",
            "Messages sent to a dead-letter topic, by reason",
            ["service", "topic", "reason"],
            registry=registry,
        )
        self.batch_fallbacks = Counter(
            "tiaojie_batch_fallbacks_total",
            "Batches handled again one message at a time after the batch handler failed",
            ["service", "topic"],
            registry=registry,
        )
        self.retries = Counter(
            "tiaojie_handler_retries_total",
            "Handler retries, by kind (transient infrastructure failure or error)",
            ["service", "topic", "kind"],
            registry=registry,
        )


class ReliableConsumer:
    """Registers handlers per (topic, event type) and runs them under the contract."""

    def __init__(
        self,
        *,
        broker: KafkaBroker,
        settings: RuntimeSettings,
        service: str,
        publisher: EventPublisher,
        metrics: ConsumerMetrics,
        probe: Probe | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._broker = broker
        self._settings = settings
        self._service = service
        self._publisher = publisher
        self._metrics = metrics
        self._probe = probe
        self._sleep = sleep
        self._subs: dict[str, _Subscription] = {}
        self._bound: set[str] = set()

    # -- registration ---------------------------------------------------------------
    def on(
        self, topic: str, *models: type[EventData], name: str | None = None
    ) -> Callable[[Handler], Handler]:
        """Decorator: handle events of these types arriving on a contract topic."""

        def register(func: Handler) -> Handler:
            sub = self._subs.setdefault(topic, _Subscription(topic))
            if sub.batch is not None:
                raise ValueError(f"{topic} has a batch handler: it must be the topic's only handler")
            for model in models:
                route = _Route(model=model, handler=func, name=name or func.__qualname__)
                sub.routes.setdefault(model.event_type, []).append(route)
            return func

        return register

    def on_batch(
        self, topic: str, *models: type[EventData], name: str | None = None
    ) -> Callable[[BatchHandler], BatchHandler]:
        """Decorator: handle the events of these types of each fetched batch in one call
        (see the module docstring for the contract). A topic with a batch handler has
        no other handlers, so that one key's events are never split between two."""

        def register(func: BatchHandler) -> BatchHandler:
            sub = self._subs.setdefault(topic, _Subscription(topic))
            if sub.batch is not None or sub.routes:
                raise ValueError(f"{topic}: a batch handler must be the topic's only handler")
            sub.batch = _BatchRoute({m.event_type: m for m in models}, func, name or func.__qualname__)
            # The per-type table serves AsyncAPI and the unknown-type check.
            for model in models:
                sub.routes[model.event_type] = [_Route(model=model, handler=_unused, name=sub.batch.name)]
            return func

        return register

    def on_raw(self, physical_topic: str, handler: RawHandler, *, concurrency: int | None = None) -> None:
        """Handle records of a topic whose contract the handler validates itself (e.g. an
        agency's inbound topic); DeadLetter and retries apply as for typed handlers."""
        self._subs[physical_topic] = _Subscription(physical_topic, raw=handler, concurrency=concurrency)

    def on_pattern(
        self,
        pattern: str,
        handler: RawHandler,
        *,
        concurrency: int | None = None,
        documents: tuple[type[EventData], ...] = (),
    ) -> None:
        """Handle records of every topic whose physical name matches a regex (anchor it with
        `$`), including topics created while the service runs: the consumer finds them at
        its next metadata refresh (`kafka_metadata_max_age_ms`). One consumer serves them
        all, however many there are. The handler validates the records itself."""
        self._subs[f"pattern:{pattern}"] = _Subscription(
            pattern, raw=handler, concurrency=concurrency, pattern=pattern, documents=documents
        )

    def limit(self, topic: str, concurrency: int) -> None:
        """Bound how many keys of one batch a topic's handlers process at once."""
        self._subs.setdefault(topic, _Subscription(topic)).concurrency = concurrency

    @property
    def topics(self) -> list[str]:
        """Contract topics this service consumes (raw subscriptions excluded)."""
        return [t for t, s in self._subs.items() if s.raw is None]

    def bind(self) -> None:
        """Create the FastStream subscribers (call once, before the broker starts)."""
        for topic, sub in self._subs.items():
            if topic in self._bound:
                continue
            self._bound.add(topic)
            self._subscribe(sub)

    async def bind_live(self, physical_topic: str, handler: RawHandler) -> None:
        """Subscribe to a new topic while the broker runs (e.g. a newly registered agency)."""
        if physical_topic in self._bound:
            return
        self.on_raw(physical_topic, handler)
        self._bound.add(physical_topic)
        subscriber = self._subscribe(self._subs[physical_topic])
        await subscriber.start()

    def _subscribe(self, sub: _Subscription) -> Any:
        physical = sub.topic if sub.raw is not None else self._settings.topic(sub.topic)
        types = ", ".join(sorted(sub.routes) or [m.event_type for m in sub.documents]) or "agency events"
        where: dict[str, Any] = {"pattern": sub.pattern} if sub.pattern else {}
        subscriber = self._broker.subscriber(
            *(() if sub.pattern else (physical,)),
            **where,
            group_id=self._settings.group(self._service),
            # Our wrapper never raises for a message's sake (it retries, then dead-letters);
            # anything raised around it is the framework's and must not be committed:
            # NACK seeks back, SafetyNet (below) waits first so there is no hot loop.
            ack_policy=AckPolicy.NACK_ON_ERROR,
            batch=True,
            max_records=self._settings.batch_max_records,
            batch_timeout_ms=self._settings.batch_timeout_ms,
            auto_offset_reset="earliest",
            max_poll_interval_ms=600_000,
            heartbeat_interval_ms=self._settings.kafka_heartbeat_interval_ms,
            decoder=_raw_decoder,
            title=f"{self._service}:{physical}",
            description=f"{self._service} consumes {types}",
        )

        # The body is documented (AsyncAPI) but not validated by FastStream: a message that
        # fails validation there would be acknowledged without reaching the DLQ.
        documented = Annotated[list[Any], WithJsonSchema({"type": "array", "items": envelope_schema(sub)})]

        async def handle_batch(body: documented, message: KafkaMessage) -> None:
            records = message.raw_message
            batch = records if isinstance(records, tuple) else (records,)
            await self.process(sub, batch)

        subscriber(handle_batch)
        return subscriber

    # -- processing -----------------------------------------------------------------
    async def process(self, sub: _Subscription, records: tuple[ConsumerRecord, ...]) -> None:
        """Handle a batch: per key in order, keys concurrently; returns when all are done."""
        if sub.batch is not None:
            await self._process_batch(sub, sub.batch, records)
            return
        by_key: dict[bytes | None, list[ConsumerRecord]] = defaultdict(list)
        for record in records:
            # Records without a key have no order to keep: each is its own group.
            key = record.key if record.key is not None else f"{record.partition}:{record.offset}".encode()
            by_key[key].append(record)
        limit = asyncio.Semaphore(sub.concurrency or self._settings.handler_concurrency)

        async def run(group: list[ConsumerRecord]) -> None:
            async with limit:
                for record in group:
                    await self._one(sub, record)

        await asyncio.gather(*(run(g) for g in by_key.values()))

    async def _process_batch(
        self, sub: _Subscription, route: _BatchRoute, records: tuple[ConsumerRecord, ...]
    ) -> None:
        deliveries = [d for d in [await self._decoded(sub, r) for r in records] if d is not None]
        if not deliveries:
            return
        try:
            refused = await route.handler(deliveries) or {}
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # One message at a time, with retries and the DLQ: whatever the batch wrote
            # before it failed is written again idempotently.
            self._metrics.batch_fallbacks.labels(self._service, sub.topic).inc()
            log.warning(
                "batch failed, handling it one message at a time",
                topic=sub.topic,
                handler=route.name,
                size=len(deliveries),
                error=_describe(exc),
            )
            await self._one_by_one(sub, route, deliveries)
            return
        again: list[Delivery] = []
        for n, delivery in enumerate(deliveries):
            error = refused.get(n)
            if error is None:
                self._metrics.handled.labels(self._service, delivery.record.topic, "handled").inc()
            elif isinstance(error, DeadLetter):
                await self._dead_letter(delivery.record, error.reason, error.detail)
            elif isinstance(error, Invalid):
                await self._dead_letter(delivery.record, "invalid", _describe(error))
            elif isinstance(error, DomainError):
                await self._dead_letter(delivery.record, error.code, error.en)
            else:
                again.append(delivery)
        if again:
            await self._one_by_one(sub, route, again)

    async def _one_by_one(self, sub: _Subscription, route: _BatchRoute, deliveries: list[Delivery]) -> None:
        by_key: dict[bytes, list[Delivery]] = defaultdict(list)
        for delivery in deliveries:
            by_key[delivery.key].append(delivery)
        limit = asyncio.Semaphore(sub.concurrency or self._settings.handler_concurrency)

        async def run(group: list[Delivery]) -> None:
            async with limit:
                for d in group:
                    await self._attempt(d.record.topic, d.record, _single(route.handler, d), label=route.name)

        await asyncio.gather(*(run(g) for g in by_key.values()))

    async def _decoded(self, sub: _Subscription, record: ConsumerRecord) -> Delivery | None:
        """The message as a Delivery, or None when it was dead-lettered or is not for us."""
        assert sub.batch is not None
        try:
            event = decode_event(record.value or b"")
        except (ValueError, ValidationError) as exc:
            await self._dead_letter(record, "malformed_envelope", _describe(exc))
            return None
        owner = topics.producer_of(sub.topic)
        if owner is not None and event.source != topics.service_source(owner):
            await self._dead_letter(
                record, "foreign_source", f"{sub.topic} carries only events of {topics.service_source(owner)}"
            )
            return None
        model = sub.batch.models.get(event.type)
        if model is None:
            if sub.topic in topics.INBOUND:
                await self._dead_letter(
                    record, "unknown_type", f"{sub.topic} does not accept {event.type[:200]}"
                )
                return None
            self._metrics.handled.labels(self._service, record.topic, "ignored").inc()
            return None
        try:
            data = model.model_validate(event.data)
        except ValidationError as exc:
            await self._dead_letter(record, "invalid_payload", _describe(exc))
            return None
        return Delivery(record=record, event=event, data=data)

    async def _one(self, sub: _Subscription, record: ConsumerRecord) -> None:
        topic = record.topic
        if sub.raw is not None:
            await self._attempt(topic, record, lambda: sub.raw(record), label="raw")  # type: ignore[misc]
            return
        try:
            event = decode_event(record.value or b"")
        except (ValueError, ValidationError) as exc:
            await self._dead_letter(record, "malformed_envelope", _describe(exc))
            return
        owner = topics.producer_of(sub.topic)
        if owner is not None and event.source != topics.service_source(owner):
            # The broker's ACLs already keep other writers off this topic; this is the second
            # line: an event that claims another producer is nobody's to apply.
            await self._dead_letter(
                record, "foreign_source", f"{sub.topic} carries only events of {topics.service_source(owner)}"
            )
            return
        routes = sub.routes.get(event.type)
        if not routes:
            if sub.topic in topics.INBOUND:
                # Senders from outside must learn that nobody reads what they sent.
                await self._dead_letter(
                    record, "unknown_type", f"{sub.topic} does not accept {event.type[:200]}"
                )
                return
            # Additive evolution: event types a service does not handle are skipped.
            self._metrics.handled.labels(self._service, topic, "ignored").inc()
            return
        for route in routes:
            try:
                payload = route.model.model_validate(event.data)
            except ValidationError as exc:
                await self._dead_letter(record, "invalid_payload", _describe(exc))
                return
            handled = await self._attempt(
                topic, record, _bind(route.handler, event, payload), label=route.name
            )
            if not handled:
                return

    async def _attempt(
        self, topic: str, record: ConsumerRecord, call: Callable[[], Awaitable[None]], *, label: str
    ) -> bool:
        """Run a handler until it succeeds or its input is dead-lettered."""
        errors = 0
        transient = 0
        while True:
            try:
                await call()
            except DeadLetter as exc:
                await self._dead_letter(record, exc.reason, exc.detail)
                return False
            except Invalid as exc:
                await self._dead_letter(record, "invalid", _describe(exc))
                return False
            except DomainError as exc:
                await self._dead_letter(record, exc.code, exc.en)
                return False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_transient(exc) or not await self._infrastructure_ok():
                    transient += 1
                    self._metrics.retries.labels(self._service, topic, "transient").inc()
                    if transient in (1, 10) or transient % 50 == 0:
                        log.warning(
                            "infrastructure unavailable, retrying",
                            topic=topic,
                            handler=label,
                            attempt=transient,
                            error=_describe(exc),
                        )
                    await self._sleep(self._backoff(transient))
                    continue
                errors += 1
                self._metrics.retries.labels(self._service, topic, "error").inc()
                if errors >= self._settings.retry_attempts:
                    await self._dead_letter(record, "handler_failed", _describe(exc, tb=True))
                    return False
                log.warning(
                    "handler failed, retrying",
                    topic=topic,
                    handler=label,
                    attempt=errors,
                    error=_describe(exc),
                )
                await self._sleep(self._backoff(errors))
                continue
            self._metrics.handled.labels(self._service, topic, "handled").inc()
            return True

    def _backoff(self, attempt: int) -> float:
        base = self._settings.retry_base_delay * (2 ** min(attempt - 1, 16))
        return min(self._settings.retry_max_delay, base)

    async def _infrastructure_ok(self) -> bool:
        if self._probe is None:
            return True
        try:
            return await asyncio.wait_for(self._probe(), timeout=5)
        except Exception:
            return False

    async def _dead_letter(self, record: ConsumerRecord, reason: str, detail: str) -> None:
        """Publish the original bytes to `<topic>.dlq` with the reason in headers; retries
        until the broker accepts it, so the input is never committed without a trace."""
        headers = {
            "x-tiaojie-reason": reason,
            "x-tiaojie-error": scrub(detail)[:4000],
            "x-tiaojie-service": self._service,
            "x-tiaojie-original-topic": record.topic,
            "x-tiaojie-original-partition": str(record.partition),
            "x-tiaojie-original-offset": str(record.offset),
            "x-tiaojie-failed-at": datetime.now(UTC).isoformat(),
        }
        key = record.key.decode(errors="replace") if record.key else None
        original = record.value or b""
        keep = DLQ_VALUE_LIMIT
        attempt = 0
        while True:
            value = original[:keep]
            if len(value) < len(original):
                # The copy must fit the broker's limit with its headers, or the partition
                # would never commit again: the original's place and digest say what it was.
                headers |= {
                    "x-tiaojie-truncated": "true",
                    "x-tiaojie-original-bytes": str(len(original)),
                    "x-tiaojie-original-sha256": hashlib.sha256(original).hexdigest(),
                }
            try:
                await self._publisher.publish_raw(dlq(record.topic), value, key=key, headers=headers)
                break
            except asyncio.CancelledError:
                raise
            except MessageSizeTooLargeError:
                keep = min(keep, len(value)) // 2  # a broker with a lower limit: keep less
                log.warning("dead-letter copy too large, truncating", kept_bytes=keep)
            except Exception as exc:
                attempt += 1
                log.warning("dead-letter publish failed, retrying", error=_describe(exc))
                await self._sleep(self._backoff(attempt))
        self._metrics.dead_letters.labels(self._service, record.topic, reason).inc()
        self._metrics.handled.labels(self._service, record.topic, "dead_lettered").inc()
        log.warning(
            "message dead-lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
            detail=scrub(detail)[:500],
        )


def _bind(handler: Handler, event: CloudEvent, payload: Any) -> Callable[[], Awaitable[None]]:
    return lambda: handler(event, payload)


def _single(handler: BatchHandler, delivery: Delivery) -> Callable[[], Awaitable[None]]:
    async def call() -> None:
        refused = await handler([delivery]) or {}
        if 0 in refused:
            raise refused[0]

    return call


async def _unused(event: CloudEvent, data: Any) -> None:
    raise AssertionError("a batch subscription's events go to its batch handler")


async def _raw_decoder(msg: Any, original: Any = None) -> Any:
    """Hand the handler raw bytes: parsing happens inside the reliable wrapper."""
    return msg.body


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline_refs(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        return {k: _inline_refs(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


def envelope_schema(sub: _Subscription) -> dict[str, Any]:
    """JSON schema of the CloudEvents a subscription accepts, payloads inlined."""
    schema = CloudEvent.model_json_schema()
    models = [routes[0].model for routes in sub.routes.values()] or list(sub.documents)
    if models:
        schema["properties"]["type"] = {"type": "string", "enum": [m.event_type for m in models]}
        payloads = []
        for model in models:
            one = model.model_json_schema()
            payloads.append(_inline_refs(one, one.get("$defs", {})))
        schema["properties"]["data"] = {"oneOf": payloads}
    schema["title"] = "CloudEvent"
    return schema


def _describe(exc: BaseException, *, tb: bool = False) -> str:
    """A reason text without input values (validation errors list fields and rules only)."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{e.field}: {e.en} / {e.zh}" for e in field_errors(exc))
    if isinstance(exc, Invalid):
        return "; ".join(f"{e.field}: {e.en} / {e.zh}" for e in exc.errors)
    text = f"{type(exc).__name__}: {exc}"
    if tb:
        frames = traceback.extract_tb(exc.__traceback__)[-3:]
        text += " at " + " <- ".join(f"{f.name}:{f.lineno}" for f in reversed(frames))
    return scrub(text)
