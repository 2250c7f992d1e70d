"""Batch-first handlers under the reliable consumer, against the real local Kafka."""

from __future__ import annotations

import pytest
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry

from tests.runtime.test_consumer import PingHappened, ping
from tests.support.kafka import eventually, produce, read_all
from tiaojie.contracts.topics import dlq
from tiaojie.runtime.consumer import ConsumerMetrics, DeadLetter, Delivery, ReliableConsumer
from tiaojie.runtime.kafka import EventPublisher, ensure_topics, make_broker
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.integration


@pytest.fixture
async def topic(settings: RuntimeSettings, unique: str) -> str:
    name = f"test.batch.{unique}.v1"
    await ensure_topics(settings, [name], partitions=1)
    return name


def consumer_for(settings: RuntimeSettings, group: str) -> tuple[ReliableConsumer, KafkaBroker]:
    broker = make_broker(settings, service=group)
    consumer = ReliableConsumer(
        broker=broker,
        settings=settings,
        service=group,
        publisher=EventPublisher(broker, settings),
        metrics=ConsumerMetrics(CollectorRegistry(), group),
    )
    return consumer, broker


async def test_a_batch_handler_gets_the_fetched_batch_in_one_call_in_key_order(
    settings: RuntimeSettings, topic: str, unique: str
) -> None:
    physical = settings.topic(topic)
    for key in (b"a", b"b"):
        await produce(settings.kafka_bootstrap, physical, [ping(n, key.decode()) for n in range(25)], key=key)
    consumer, broker = consumer_for(settings, f"g-{unique}")
    calls: list[list[Delivery]] = []

    @consumer.on_batch(topic, PingHappened)
    async def handle(batch: list[Delivery]) -> None:
        calls.append(batch)

    consumer.bind()
    await broker.start()
    try:
        await eventually(lambda: sum(len(c) for c in calls) == 50)
    finally:
        await broker.stop()
    assert max(len(c) for c in calls) > 1  # fetched together, handled together
    for key in (b"a", b"b"):
        mine = [d.data.n for c in calls for d in c if d.key == key]
        assert mine == list(range(25))


async def test_a_poison_message_cannot_hold_its_batch(
    settings: RuntimeSettings, topic: str, unique: str
) -> None:
    physical = settings.topic(topic)
    await produce(settings.kafka_bootstrap, physical, [ping(n, f"k{n % 3}") for n in range(12)])
    consumer, broker = consumer_for(settings, f"g-{unique}")
    applied: list[int] = []

    @consumer.on_batch(topic, PingHappened)
    async def handle(batch: list[Delivery]) -> None:
        if any(d.data.n == 7 for d in batch):
            raise RuntimeError("bug in the rules")
        applied.extend(d.data.n for d in batch)

    consumer.bind()
    await broker.start()
    try:
        await eventually(lambda: sorted(set(applied)) == [n for n in range(12) if n != 7])
        dead = await read_all(settings.kafka_bootstrap, settings.topic(dlq(topic)), expect=1)
    finally:
        await broker.stop()
    assert len(dead) == 1 and dict(dead[0].headers)["x-tiaojie-reason"] == b"handler_failed"
    # The batch was handed over once, then one message at a time: 7 retried, then dead-lettered.


def test_a_batch_handler_is_its_topics_only_handler(settings: RuntimeSettings) -> None:
    consumer, _ = consumer_for(settings, "g")

    @consumer.on_batch("test.only.v1", PingHappened)
    async def handle(batch: list[Delivery]) -> None:
        return None

    with pytest.raises(ValueError, match="only handler"):

        @consumer.on("test.only.v1", PingHappened)
        async def other(event: object, data: object) -> None:
            return None


async def test_a_batch_handler_refuses_single_messages_without_failing_the_batch(
    settings: RuntimeSettings, topic: str, unique: str
) -> None:
    physical = settings.topic(topic)
    await produce(settings.kafka_bootstrap, physical, [ping(n, f"k{n}") for n in range(8)])
    consumer, broker = consumer_for(settings, f"g-{unique}")
    applied: list[int] = []
    tries: dict[int, int] = {}

    @consumer.on_batch(topic, PingHappened)
    async def handle(batch: list[Delivery]) -> dict[int, BaseException]:
        refused: dict[int, BaseException] = {}
        for i, d in enumerate(batch):
            n = d.data.n
            tries[n] = tries.get(n, 0) + 1
            if n == 3:
                refused[i] = DeadLetter("not_for_us", detail="three")
            elif n == 5 and tries[n] == 1:
                refused[i] = RuntimeError("flaky")  # tried again alone, then applied
            else:
                applied.append(n)
        return refused

    consumer.bind()
    await broker.start()
    try:
        await eventually(lambda: sorted(set(applied)) == [0, 1, 2, 4, 5, 6, 7])
        dead = await read_all(settings.kafka_bootstrap, settings.topic(dlq(topic)), expect=1)
    finally:
        await broker.stop()
    assert dict(dead[0].headers)["x-tiaojie-reason"] == b"not_for_us"
    assert tries[3] == 1 and tries[5] == 2
