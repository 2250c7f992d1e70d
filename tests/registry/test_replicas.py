"""Two registry replicas on one database, as `tiaojie up --replicas registry=2` runs them,
against the real FerretDB: the races the registry lost while its writes were version-
guarded updates and counts (FerretDB lets several version-guarded writers win, and two
replicas counting a mediator's load at once both see room), and which the storage engine
now decides one claimed revision at a time."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import orjson
import pytest

from tests.registry.conftest import START, RegistryHarness, World, make_world, replica_of
from tests.registry.test_assignment import mediator, organisations, registered
from tests.support.kafka import read_all
from tiaojie.contracts import topics
from tiaojie.registry.models import MediatorIn, TrainingIn

pytestmark = pytest.mark.integration


@pytest.fixture
async def replicas(registry: RegistryHarness) -> tuple[World, World]:
    first = await make_world(registry)
    return first, await replica_of(registry, first)


async def test_two_replicas_changing_one_mediator_lose_no_update(
    registry: RegistryHarness, replicas: tuple[World, World]
) -> None:
    first, second = replicas
    await organisations(first)
    mediator_id = f"m-busy-{uuid.uuid4().hex[:6]}"
    number = await mediator(first, mediator_id, capacity=50)
    courses = [f"课程{n}" for n in range(20)]

    async def train(world: World, course: str) -> None:
        await world.service.add_training(
            mediator_id=mediator_id,
            record=TrainingIn(course=course, hours=2, on="2026-02-20"),
            by="bureau",
        )

    # Half the records through each replica, all at once, with a re-filing that changes the
    # grade from one of them: every change is made on the latest version, none is lost.
    filing = MediatorIn.model_validate(
        {
            "id": mediator_id,
            "name": "调解员" + mediator_id[-2:],
            "id_number": number,
            "county": "371302",
            "organisation_ids": ["tc"],
            "full_time": True,
            "grade": "2",
            "certificate_number": "C" + mediator_id,
            "certificate_expires_on": "2027-12-31",
            "capacity": 50,
        }
    )
    await asyncio.gather(
        *(train(first if n % 2 else second, c) for n, c in enumerate(courses)),
        second.service.register_mediator(data=filing, by="bureau"),
    )

    for world in (first, second):
        stored = await world.service.mediator(mediator_id, access=None)
        assert sorted(t.course for t in stored.training) == sorted(courses)
        assert stored.grade == "2"
        assert stored.version == 1 + len(courses) + 1
    history = await first.service.history(entity="mediator", entity_id=mediator_id)
    assert [h["version"] for h in history] == list(range(stored.version, 0, -1))
    assert Counter(h["action"] for h in history) == {"create": 1, "training": 20, "register": 1}
    # Each version announced exactly once, under its own id.
    settings = registry.settings
    records = await read_all(
        settings.kafka_bootstrap, settings.topic(topics.MEDIATORS), expect=10**6, timeout=3
    )
    announced = {
        orjson.loads(r.value)["id"]: orjson.loads(r.value)["data"]["version"]
        for r in records
        if r.key == mediator_id.encode()
    }
    assert sorted(announced.values()) == list(range(1, stored.version + 1))


async def test_two_replicas_assigning_at_once_never_exceed_a_capacity_or_assign_twice(
    replicas: tuple[World, World],
) -> None:
    first, second = replicas
    await organisations(first)  # the county centre has no mediators: nobody above tc
    await mediator(first, "m-1", capacity=2)
    await mediator(first, "m-2", capacity=2)
    events = [registered(f"c-race-{n}") for n in range(10)]
    # Every case delivered to both replicas at once, as after a rebalance.
    await asyncio.gather(
        *(
            world.assignments.case_registered(event=e, case=e.payload())  # type: ignore[arg-type]
            for e in events
            for world in (first, second)
        )
    )
    repo = first.assignments.repo
    decisions = [await repo.decisions_of(e.subject or "") for e in events]
    assert [len(d) for d in decisions] == [1] * len(events)  # one decision per case
    outcomes = Counter(d[0].outcome for d in decisions)
    assert outcomes == {"assigned": 4, "failed": 6}
    stored = [await repo.get_case(e.subject or "") for e in events]
    held = Counter(c.holder for c in stored if c is not None and c.holder)
    assert held == {"m-1": 2, "m-2": 2}
    # The ledgers count exactly the cases their mediators hold.
    for m in ("m-1", "m-2"):
        assert await second.assignments.repo.load(m) == 2
    assert sum([await repo.recent_assignments(m, since=START.date()) for m in ("m-1", "m-2")]) == 4


async def test_one_batch_with_more_cases_than_places_fills_them_exactly(
    replicas: tuple[World, World],
) -> None:
    first, second = replicas
    await organisations(first)
    await mediator(first, "m-1", capacity=2)
    await mediator(first, "m-2", capacity=2)
    events = [registered(f"c-batch-{n}") for n in range(10)]
    batch = [(e, e.payload()) for e in events]
    # One batch planned in memory against one read: its cases must not share the last places.
    await first.assignments.case_events(events=batch)  # type: ignore[arg-type]
    repo = first.assignments.repo
    outcomes = Counter([(await repo.decisions_of(e.subject or ""))[-1].outcome for e in events])
    assert outcomes == {"assigned": 4, "failed": 6}
    # The same batch on both replicas at once (a rebalance): nothing decided twice.
    await asyncio.gather(*(w.assignments.case_events(events=batch) for w in (first, second)))  # type: ignore[arg-type]
    assert [len(await repo.decisions_of(e.subject or "")) for e in events] == [1] * len(events)
    stored = [await repo.get_case(e.subject or "") for e in events]
    assert Counter(c.holder for c in stored if c is not None and c.holder) == {"m-1": 2, "m-2": 2}
    for m in ("m-1", "m-2"):
        assert await second.assignments.repo.load(m) == 2
    assert sum([await repo.recent_assignments(m, since=START.date()) for m in ("m-1", "m-2")]) == 4


async def test_two_replicas_with_one_batch_each_never_exceed_a_capacity(
    replicas: tuple[World, World],
) -> None:
    first, second = replicas
    await organisations(first)
    await mediator(first, "m-1", capacity=2)
    await mediator(first, "m-2", capacity=2)
    events = [registered(f"c-both-{n}") for n in range(10)]
    batch = [(e, e.payload()) for e in events]
    # Each replica plans its batch against the same read: their claims collide, and the
    # losers decide again alone on the ledgers' heads.
    await asyncio.gather(*(w.assignments.case_events(events=batch) for w in (first, second)))  # type: ignore[arg-type]
    repo = first.assignments.repo
    decisions = [await repo.decisions_of(e.subject or "") for e in events]
    assert [len(d) for d in decisions] == [1] * len(events)
    assert Counter(d[0].outcome for d in decisions) == {"assigned": 4, "failed": 6}
    stored = [await repo.get_case(e.subject or "") for e in events]
    assert Counter(c.holder for c in stored if c is not None and c.holder) == {"m-1": 2, "m-2": 2}
    for m in ("m-1", "m-2"):
        assert await repo.load(m) == 2
