"""Hostile inputs at the runtime's edges, as the attacks they stop: an event as large as the
broker takes, whose dead-letter copy would not fit, must not stop its partition; one
revision nobody can publish must not hold back the sweep of every other aggregate."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from tests.runtime.test_consumer import Harness, ping
from tests.support.kafka import eventually, produce, read_all
from tiaojie.contracts.envelope import EventData, new_event
from tiaojie.contracts.topics import dlq
from tiaojie.runtime.kafka import EventPublisher, ensure_topics, make_broker
from tiaojie.runtime.mongo import ensure_indexes
from tiaojie.runtime.revisions import Change, Revisions
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = [pytest.mark.integration, pytest.mark.security]

# As large as aiokafka's producer (and the broker) take a record: its copy in the DLQ,
# with the reason headers added, is over the limit.
NEAR_ONE_MIB = 1_048_576 - 400


@pytest.fixture
async def topic(settings: RuntimeSettings, unique: str) -> str:
    name = f"test.{unique}.v1"
    await ensure_topics(settings, [name], partitions=1)
    return name


async def test_an_event_the_dlq_cannot_hold_whole_is_truncated_not_retried_forever(
    settings: RuntimeSettings, topic: str, unique: str
) -> None:
    seen: list[int] = []

    async def handle(n: int) -> None:
        seen.append(n)

    huge = b"{" + b"x" * (NEAR_ONE_MIB - 1)  # not JSON: dead-lettered as malformed
    async with Harness(settings, topic, handle, group=f"g-{unique}") as h:
        await produce(settings.kafka_bootstrap, h.physical, [huge, ping(7)])
        # Before: the copy was refused by the producer and retried forever, the partition
        # never committed again and ping 7 was never handled.
        await eventually(lambda: seen == [7], timeout=30)
    dead = await read_all(settings.kafka_bootstrap, settings.topic(dlq(topic)), expect=1)
    assert len(dead) == 1
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert headers["x-tiaojie-reason"] == "malformed_envelope"
    assert headers["x-tiaojie-truncated"] == "true"
    assert headers["x-tiaojie-original-bytes"] == str(len(huge))
    assert headers["x-tiaojie-original-sha256"] == hashlib.sha256(huge).hexdigest()
    assert headers["x-tiaojie-original-offset"] == "0"
    assert 0 < len(dead[0].value) < len(huge) and huge.startswith(dead[0].value)


class Noted(EventData):
    event_type = "tiaojie.test.Noted"
    n: int
    text: str = ""


async def test_one_revision_that_cannot_be_published_does_not_stop_the_sweep(
    settings: RuntimeSettings, db: AsyncDatabase[dict[str, Any]], topic: str
) -> None:
    broker = make_broker(settings, service="sweep-test")
    await broker.start()
    registry = CollectorRegistry()
    publisher = EventPublisher(broker, settings, registry=registry)
    try:
        store = Revisions(db, "notes", publisher=publisher, settings=settings)
        await ensure_indexes(db, store.indexes)

        def change(n: int, *, text: str = "") -> Change:
            event = new_event(Noted(n=n, text=text), source="/test", subject=f"a{n}")
            return Change({"n": n}, [(topic, event)])

        # Crashed writers left three revisions: the first one's event is larger than the
        # producer may send (an input that slipped past the size checks).
        claims = [
            store._claim_of("a0", change(0, text="x" * 1_100_000), after=None),
            store._claim_of("a1", change(1), after=None),
            store._claim_of("a2", change(2), after=None),
        ]
        await store._insert_claims(claims)
        settled = await store.sweep(older_than=timedelta(0))
        # Before: the sweep raised on a0 and published nothing of a1 or a2.
        assert settled == 2
        assert await store.published("a1", 1) and await store.published("a2", 1)
        assert not await store.published("a0", 1)
        events = await read_all(settings.kafka_bootstrap, settings.topic(topic), expect=2)
        assert len(events) == 2
        skipped = registry.get_sample_value("tiaojie_outbox_skipped_total", {"collection": "notes"})
        assert skipped == 1
    finally:
        await broker.stop()
