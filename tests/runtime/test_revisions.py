"""The storage engine against the real FerretDB and Kafka: the races it exists for."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from tests.support.kafka import read_all
from tiaojie.contracts.envelope import EventData, derived_id, new_event
from tiaojie.runtime.kafka import EventPublisher, ensure_topics, make_broker
from tiaojie.runtime.mongo import ensure_indexes
from tiaojie.runtime.revisions import Change, Revisions
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.integration


class CounterIncremented(EventData):
    event_type = "tiaojie.test.CounterIncremented"
    n: int


@pytest.fixture
async def topic(settings: RuntimeSettings, unique: str) -> str:
    name = f"test.rev.{unique}.v1"
    await ensure_topics(settings, [name], partitions=1)
    return name


@pytest.fixture
async def publisher(settings: RuntimeSettings) -> AsyncIterator[EventPublisher]:
    broker = make_broker(settings, service="revisions-test")
    await broker.start()
    try:
        yield EventPublisher(broker, settings)
    finally:
        await broker.stop()


async def store_of(db: AsyncDatabase[dict[str, Any]], publisher: EventPublisher, settings: Any) -> Revisions:
    store = Revisions(db, "counters", publisher=publisher, settings=settings)
    await ensure_indexes(db, store.indexes)
    await db["counters"].insert_one({"_id": "other", "version": 1})  # the collection exists
    return store


def increment(topic: str, action: str) -> Any:
    """The rule: add one, unless this action was applied already (redelivery)."""

    def decide(state: dict[str, Any] | None) -> Change | None:
        state = state or {"_id": "c", "n": 0, "applied": []}
        if action in state["applied"]:
            return None
        n = state["n"] + 1
        event = new_event(
            CounterIncremented(n=n), source="/test", subject="c", id=derived_id(f"c:{action}", "inc")
        )
        return Change({**state, "n": n, "applied": [*state["applied"], action]}, [(topic, event)])

    return decide


async def test_concurrent_writers_each_apply_exactly_once(
    db: AsyncDatabase[dict[str, Any]], publisher: EventPublisher, settings: RuntimeSettings, topic: str
) -> None:
    store = await store_of(db, publisher, settings)
    writers = 40
    outcomes = await asyncio.gather(*(store.apply("c", increment(topic, f"a{i}")) for i in range(writers)))
    assert all(o.fresh for o in outcomes)
    head = await store.get("c")
    assert head is not None
    # FerretDB loses concurrent $inc; claimed revisions lose nothing.
    assert head["n"] == writers and head["version"] == writers
    assert sorted(head["applied"]) == sorted(f"a{i}" for i in range(writers))
    revisions = await store.log.find({"of": "c"}).sort("_id", 1).to_list()
    assert [r["version"] for r in revisions] == list(range(1, writers + 1))
    assert all(r["applied"] for r in revisions)
    # Only the head keeps its state.
    assert [r["version"] for r in revisions if r.get("state")] == [writers]
    events = await read_all(settings.kafka_bootstrap, settings.topic(topic), expect=10 * writers, timeout=5)
    # At least once, with stable ids: each increment announced under one id.
    announced = {orjson.loads(r.value)["id"]: orjson.loads(r.value)["data"]["n"] for r in events}
    assert sorted(announced.values()) == list(range(1, writers + 1))


async def test_redelivery_has_no_second_effect(
    db: AsyncDatabase[dict[str, Any]], publisher: EventPublisher, settings: RuntimeSettings, topic: str
) -> None:
    store = await store_of(db, publisher, settings)
    first = await store.apply("c", increment(topic, "a1"))
    again = await store.apply("c", increment(topic, "a1"))
    assert first.fresh and not again.fresh
    assert again.after is not None and again.after["n"] == 1 and again.after["version"] == 1


async def test_a_crash_between_claim_and_snapshot_is_rolled_forward_and_published(
    db: AsyncDatabase[dict[str, Any]], publisher: EventPublisher, settings: RuntimeSettings, topic: str
) -> None:
    store = await store_of(db, publisher, settings)
    await store.apply("c", increment(topic, "a1"))
    # A writer claims version 2 and dies before writing the snapshot or publishing.
    change = increment(topic, "a2")(await store.get("c"))
    assert change is not None
    claim = store._claim_of("c", change, after=await store.get("c"))
    await store._insert_claims([claim])
    assert claim.won
    snapshot = await store.get("c")
    assert snapshot is not None and snapshot["version"] == 1  # behind its log

    # The next writer loses version 2, rolls forward, publishes the dead writer's event
    # and then applies its own on top: nothing lost, nothing doubled.
    third = await store.apply("c", increment(topic, "a3"))
    assert third.fresh and third.after is not None
    assert third.after["n"] == 3 and third.after["applied"] == ["a1", "a2", "a3"]
    events = await read_all(settings.kafka_bootstrap, settings.topic(topic), expect=3)
    assert [orjson.loads(r.value)["data"]["n"] for r in events] == [1, 2, 3]
    assert await store.unsettled(older_than=timedelta(0)) == []


async def test_the_sweep_settles_what_nobody_writes_again(
    db: AsyncDatabase[dict[str, Any]], publisher: EventPublisher, settings: RuntimeSettings, topic: str
) -> None:
    store = await store_of(db, publisher, settings)
    change = increment(topic, "a1")(None)
    assert change is not None
    claim = store._claim_of("c", change, after=None)
    await store._insert_claims([claim])  # crashed right after its claim
    assert await store.get("c") is None

    assert await store.sweep(older_than=timedelta(seconds=60)) == 0  # its writer may be alive
    assert await store.sweep(older_than=timedelta(0)) == 1
    head = await store.get("c")
    assert head is not None and head["n"] == 1
    assert await store.published("c", 1)
    events = await read_all(settings.kafka_bootstrap, settings.topic(topic), expect=1)
    assert len(events) == 1


async def test_a_batch_claims_together_and_redoes_only_the_lost_claims(
    db: AsyncDatabase[dict[str, Any]], publisher: EventPublisher, settings: RuntimeSettings, topic: str
) -> None:
    store = await store_of(db, publisher, settings)
    await asyncio.gather(*(store.apply(f"k{i}", increment(topic, "seed")) for i in range(5)))

    # Two batches over the same aggregates at once: every claim a batch loses is redone on the head.
    def batch(tag: str) -> dict[str, Any]:
        return {f"k{i}": increment(topic, f"{tag}{i}") for i in range(5)}

    first, second = await asyncio.gather(store.apply_many(batch("x")), store.apply_many(batch("y")))
    assert all(o.fresh for o in [*first.values(), *second.values()])
    for i in range(5):
        doc = await store.get(f"k{i}")
        assert doc is not None and doc["n"] == 3 and doc["version"] == 3
        assert sorted(doc["applied"]) == sorted(["seed", f"x{i}", f"y{i}"])
    events = await read_all(settings.kafka_bootstrap, settings.topic(topic), expect=15)
    assert len(events) == 15


async def test_states_the_caller_read_are_not_read_again_and_a_stale_one_is_redone_on_the_head(
    db: AsyncDatabase[dict[str, Any]], publisher: EventPublisher, settings: RuntimeSettings, topic: str
) -> None:
    store = await store_of(db, publisher, settings)
    await asyncio.gather(*(store.apply(f"k{i}", increment(topic, "seed")) for i in range(3)))
    known = await store.get_many(["k0", "k1", "k2"])
    await store.apply("k1", increment(topic, "meanwhile"))  # k1's known state is now stale
    reads: list[str] = []
    real_get = store.get

    async def counted_get(id: str) -> dict[str, Any] | None:
        reads.append(id)
        return await real_get(id)

    store.get = counted_get  # type: ignore[method-assign]
    outcomes = await store.apply_many(
        {f"k{i}": increment(topic, f"b{i}") for i in range(3)}, known={**known, "k9": None}
    )
    assert all(o.fresh for o in outcomes.values())
    assert reads == ["k1"]  # only the stale one, after its lost claim
    store.get = real_get  # type: ignore[method-assign]
    k1 = await store.get("k1")
    assert k1 is not None and k1["n"] == 3 and sorted(k1["applied"]) == ["b1", "meanwhile", "seed"]


async def test_a_noop_on_a_lagging_snapshot_is_confirmed_on_the_head(
    db: AsyncDatabase[dict[str, Any]], publisher: EventPublisher, settings: RuntimeSettings, topic: str
) -> None:
    store = await store_of(db, publisher, settings)
    await store.apply("c", increment(topic, "a1"))
    change = increment(topic, "a2")(await store.get("c"))
    assert change is not None
    claim = store._claim_of("c", change, after=await store.get("c"))
    await store._insert_claims([claim])  # version 2 claimed, snapshot still at 1

    seen: list[int] = []

    def only_if_two(state: dict[str, Any] | None) -> Change | None:
        assert state is not None
        seen.append(state["n"])
        return None

    outcome = await store.apply("c", only_if_two, verify_noop=True)
    assert seen == [1, 2] and outcome.after is not None and outcome.after["n"] == 2


async def test_many_new_aggregates_are_created_in_one_claim_and_an_existing_one_is_refused(
    db: AsyncDatabase[dict[str, Any]], publisher: EventPublisher, settings: RuntimeSettings, topic: str
) -> None:
    store = await store_of(db, publisher, settings)
    await store.apply("k1", increment(topic, "seed"))
    changes = []
    for i in range(4):
        change = increment(topic, f"new{i}")(None)
        assert change is not None
        changes.append(Change({**change.state, "_id": f"k{i}"}, change.events))
    assert await store.create_many(changes) == [True, False, True, True]
    k1 = await store.get("k1")
    assert k1 is not None and k1["applied"] == ["seed"]  # the existing one untouched
    for i in (0, 2, 3):
        doc = await store.get(f"k{i}")
        assert doc is not None and doc["version"] == 1 and doc["applied"] == [f"new{i}"]


async def test_a_document_stored_before_the_engine_is_continued(
    db: AsyncDatabase[dict[str, Any]], publisher: EventPublisher, settings: RuntimeSettings, topic: str
) -> None:
    store = await store_of(db, publisher, settings)
    await store.docs.insert_one({"_id": "c", "n": 5, "applied": []})  # no version field
    outcome = await store.apply("c", increment(topic, "a1"))
    assert outcome.fresh
    head = await store.get("c")
    assert head is not None and head["n"] == 6 and head["version"] == 1
