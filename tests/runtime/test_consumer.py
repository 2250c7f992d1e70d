"""The reliable consumer against the real local Kafka: DLQ, retries, commit after handling."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pymongo.errors import AutoReconnect

from tests.support.kafka import eventually, produce, read_all
from tiaojie.contracts.envelope import CloudEvent, EventData, new_event
from tiaojie.contracts.topics import dlq
from tiaojie.runtime.consumer import ConsumerMetrics, DeadLetter, ReliableConsumer
from tiaojie.runtime.kafka import EventPublisher, ensure_topics, make_broker
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.integration


class PingHappened(EventData):
    event_type = "tiaojie.test.PingHappened"
    n: int


def ping(n: int, key: str = "k") -> bytes:
    return new_event(PingHappened(n=n), source="/test", subject=key).to_bytes()


class Harness:
    """A ReliableConsumer on its own topic and group, as a service would run it."""

    def __init__(
        self,
        settings: RuntimeSettings,
        topic: str,
        handler: Callable[[int], Any],
        *,
        group: str,
        probe: Any = None,
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.broker = make_broker(settings, service=group)
        self.consumer = ReliableConsumer(
            broker=self.broker,
            settings=settings,
            service=group,
            publisher=EventPublisher(self.broker, settings),
            metrics=ConsumerMetrics(CollectorRegistry(), group),
            probe=probe,
        )

        @self.consumer.on(topic, PingHappened)
        async def on_ping(event: CloudEvent, data: PingHappened) -> None:
            await handler(data.n)

    async def __aenter__(self) -> Harness:
        self.consumer.bind()
        await self.broker.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.broker.stop()

    @property
    def physical(self) -> str:
        return self.settings.topic(self.topic)


@pytest.fixture
async def topic(settings: RuntimeSettings, unique: str) -> str:
    name = f"test.{unique}.v1"
    await ensure_topics(settings, [name], partitions=1)
    return name


async def test_malformed_message_goes_to_dlq_and_the_partition_keeps_flowing(
    settings: RuntimeSettings, topic: str, unique: str
) -> None:
    seen: list[int] = []

    async def handle(n: int) -> None:
        seen.append(n)

    async with Harness(settings, topic, handle, group=f"g-{unique}") as h:
        await produce(
            settings.kafka_bootstrap,
            h.physical,
            [ping(1), b"{not json", b'{"specversion": "1.0", "id": "x"}', ping(2)],
        )
        await eventually(lambda: seen == [1, 2])
    dead = await read_all(settings.kafka_bootstrap, settings.topic(dlq(topic)), expect=2)
    assert [r.value for r in dead] == [b"{not json", b'{"specversion": "1.0", "id": "x"}']
    headers = dict(dead[0].headers)
    assert headers["x-tiaojie-reason"] == b"malformed_envelope"
    assert b"not JSON" in headers["x-tiaojie-error"]
    assert headers["x-tiaojie-original-topic"] == h.physical.encode()


async def test_invalid_payload_is_dead_lettered_with_field_reasons(
    settings: RuntimeSettings, topic: str, unique: str
) -> None:
    seen: list[int] = []

    async def handle(n: int) -> None:
        seen.append(n)

    bad = new_event(PingHappened(n=1), source="/t", subject="k").model_copy(update={"data": {"n": "many"}})
    async with Harness(settings, topic, handle, group=f"g-{unique}") as h:
        await produce(settings.kafka_bootstrap, h.physical, [bad.to_bytes(), ping(3)])
        await eventually(lambda: seen == [3])
    dead = await read_all(settings.kafka_bootstrap, settings.topic(dlq(topic)), expect=1)
    headers = dict(dead[0].headers)
    assert headers["x-tiaojie-reason"] == b"invalid_payload"
    assert "n: " in headers["x-tiaojie-error"].decode()


async def test_failing_handler_is_retried_with_backoff_then_dead_lettered(
    settings: RuntimeSettings, topic: str, unique: str
) -> None:
    calls: dict[int, int] = {}

    async def handle(n: int) -> None:
        calls[n] = calls.get(n, 0) + 1
        if n == 1:
            raise RuntimeError("bug in the rules")

    async with Harness(settings, topic, handle, group=f"g-{unique}") as h:
        await produce(settings.kafka_bootstrap, h.physical, [ping(1), ping(2)])
        await eventually(lambda: calls.get(2) == 1)
    assert calls[1] == settings.retry_attempts
    dead = await read_all(settings.kafka_bootstrap, settings.topic(dlq(topic)), expect=1)
    assert dict(dead[0].headers)[b"x-tiaojie-reason".decode()] == b"handler_failed"


async def test_dead_letter_instruction_skips_retries(
    settings: RuntimeSettings, topic: str, unique: str
) -> None:
    calls: list[int] = []

    async def handle(n: int) -> None:
        calls.append(n)
        raise DeadLetter("unknown_agency", detail="agency x is not registered")

    async with Harness(settings, topic, handle, group=f"g-{unique}") as h:
        await produce(settings.kafka_bootstrap, h.physical, [ping(1)])
        dead = await read_all(settings.kafka_bootstrap, settings.topic(dlq(topic)), expect=1)
    assert calls == [1]
    assert dict(dead[0].headers)["x-tiaojie-reason"] == b"unknown_agency"


async def test_transient_failures_are_retried_until_they_pass_and_never_dead_lettered(
    settings: RuntimeSettings, topic: str, unique: str
) -> None:
    attempts: list[int] = []

    async def handle(n: int) -> None:
        attempts.append(n)
        if len(attempts) < 6:  # more than retry_attempts: transient errors are not counted
            raise AutoReconnect("database unreachable")

    async with Harness(settings, topic, handle, group=f"g-{unique}") as h:
        await produce(settings.kafka_bootstrap, h.physical, [ping(7)])
        await eventually(lambda: len(attempts) == 6)
    dead = await read_all(settings.kafka_bootstrap, settings.topic(dlq(topic)), expect=1, timeout=2)
    assert dead == []


async def test_unexpected_error_while_database_is_down_is_not_dead_lettered(
    settings: RuntimeSettings, topic: str, unique: str
) -> None:
    database_up = asyncio.Event()
    attempts: list[int] = []
    succeeded: list[int] = []

    async def probe() -> bool:
        return database_up.is_set()

    async def handle(n: int) -> None:
        attempts.append(n)
        if not database_up.is_set():
            raise RuntimeError("driver error while the database restarts")
        succeeded.append(n)

    async with Harness(settings, topic, handle, group=f"g-{unique}", probe=probe) as h:
        await produce(settings.kafka_bootstrap, h.physical, [ping(1)])
        await eventually(lambda: len(attempts) > settings.retry_attempts + 1)
        database_up.set()
        await eventually(lambda: succeeded == [1])
    dead = await read_all(settings.kafka_bootstrap, settings.topic(dlq(topic)), expect=1, timeout=2)
    assert dead == []


async def test_offset_is_committed_only_after_handling(
    settings: RuntimeSettings, topic: str, unique: str
) -> None:
    """A handler still running at shutdown is cancelled and its message redelivered."""
    release = asyncio.Event()
    first: list[int] = []
    fast = settings.model_copy(update={"graceful_timeout": 1.0})

    async def slow(n: int) -> None:
        first.append(n)
        await release.wait()

    async with Harness(fast, topic, slow, group=f"g-{unique}") as h:
        await produce(settings.kafka_bootstrap, h.physical, [ping(1)])
        await eventually(lambda: first == [1])
    # The broker stopped with the handler still waiting: nothing may have been committed.
    second: list[int] = []

    async def quick(n: int) -> None:
        second.append(n)

    async with Harness(settings, topic, quick, group=f"g-{unique}"):
        await eventually(lambda: second == [1])
    # ...and once handled, it is committed: a third consumer in the group gets nothing.
    third: list[int] = []

    async def record(n: int) -> None:
        third.append(n)

    async with Harness(settings, topic, record, group=f"g-{unique}") as h3:
        await produce(settings.kafka_bootstrap, h3.physical, [ping(2)])
        await eventually(lambda: third == [2])


async def test_same_key_in_order_across_a_batch(settings: RuntimeSettings, topic: str, unique: str) -> None:
    order: dict[str, list[int]] = {"a": [], "b": []}

    async def handle(n: int) -> None:
        await asyncio.sleep(0.001 * (n % 3))
        order["a" if n < 100 else "b"].append(n)

    async with Harness(settings, topic, handle, group=f"g-{unique}") as h:
        values = [ping(i, "a") for i in range(50)]
        producer_b = [ping(100 + i, "b") for i in range(50)]
        await produce(settings.kafka_bootstrap, h.physical, values, key=b"a")
        await produce(settings.kafka_bootstrap, h.physical, producer_b, key=b"b")
        await eventually(lambda: len(order["a"]) == 50 and len(order["b"]) == 50)
    assert order["a"] == list(range(50)) and order["b"] == list(range(100, 150))
