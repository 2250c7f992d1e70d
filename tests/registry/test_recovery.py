"""Crashes between the steps of an assignment, against the real FerretDB and Kafka: what a
dead writer leaves (a plan, a reservation, an unsettled revision) is completed by the
redelivery, released by the ledgers' audit, or rolled forward by the sweep; and a
database written before the storage engine is converted and continued."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from tests.registry.conftest import START, RegistryHarness, World, make_world
from tests.registry.test_assignment import closing, load, mediator, organisations, registered
from tests.support.kafka import read_all
from tiaojie.contracts import topics
from tiaojie.contracts.common import CaseStatus
from tiaojie.contracts.intake import CaseResolved
from tiaojie.registry import cases
from tiaojie.registry.repository import MIGRATED
from tiaojie.runtime.mongo import outbox_fields

pytestmark = pytest.mark.integration


class Crash(Exception):
    """A writer dying at a chosen step."""


@pytest.fixture
async def world(registry: RegistryHarness) -> World:
    world = await make_world(registry)
    await organisations(world)
    return world


def dies(**kwargs: Any) -> Any:
    """`cases.conclude` of a writer that dies after reserving its mediator."""
    raise Crash


async def test_a_plan_left_by_a_dead_writer_is_completed_by_the_redelivery(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await mediator(world, "m-a", capacity=50)
    await mediator(world, "m-b", capacity=50)
    event = registered("c-crashed")
    real = cases.conclude
    monkeypatch.setattr(cases, "conclude", dies)
    with pytest.raises(Crash):
        await world.assignments.case_registered(event=event, case=event.payload())  # type: ignore[arg-type]
    case = await world.assignments.repo.get_case("c-crashed")
    assert case is not None and case.holder is None and len(case.pending) == 1
    planned = case.pending[0]["mediator_id"]
    assert await load(world, planned) == 1  # reserved, not yet decided
    monkeypatch.setattr(cases, "conclude", real)

    # The consumer did not commit the message: it comes again and completes the same plan.
    await world.assignments.case_registered(event=event, case=event.payload())  # type: ignore[arg-type]
    case = await world.assignments.repo.get_case("c-crashed")
    assert case is not None and case.holder == planned and case.pending == []
    assert len(await world.assignments.repo.decisions_of("c-crashed")) == 1
    assert await load(world, "m-a") + await load(world, "m-b") == 1


async def test_a_reservation_nobody_completes_is_released_by_the_audit(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await mediator(world, "m-a", capacity=50)
    await mediator(world, "m-b", capacity=50)
    event = registered("c-manual")
    await world.assignments.case_registered(event=event, case=event.payload())  # type: ignore[arg-type]
    holder = (await world.assignments.repo.get_case("c-manual")).holder  # type: ignore[union-attr]
    other = "m-b" if holder == "m-a" else "m-a"
    real = cases.conclude
    monkeypatch.setattr(cases, "conclude", dies)
    # A centre user's request dies half-way and is never sent again.
    with pytest.raises(Crash):
        await world.assignments.reassign(
            case_id="c-manual", mediator_id=other, reason="当事人申请回避", by="centre", counties=None
        )
    monkeypatch.setattr(cases, "conclude", real)
    assert await load(world, other) == 1 and await load(world, holder or "") == 1

    assert await world.recovery.audit(older_than=timedelta(hours=1)) == 0  # the writer may be alive
    assert await world.recovery.audit(older_than=timedelta(0)) == 1
    case = await world.assignments.repo.get_case("c-manual")
    assert case is not None and case.holder == holder and case.pending == []
    assert await load(world, other) == 0 and await load(world, holder or "") == 1
    # The same reassignment asked again goes through.
    done = await world.assignments.reassign(
        case_id="c-manual", mediator_id=other, reason="当事人申请回避", by="centre", counties=None
    )
    assert done.mediator_id == other
    assert await load(world, other) == 1 and await load(world, holder or "") == 0


async def test_a_release_left_undone_is_finished_by_the_redelivered_event(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await mediator(world, "m-a", capacity=50)
    event = registered("c-closing")
    await world.assignments.case_registered(event=event, case=event.payload())  # type: ignore[arg-type]
    assert await load(world, "m-a") == 1

    async def release(**kwargs: Any) -> None:
        raise Crash

    resolved = closing(CaseResolved, "c-closing", CaseStatus.RESOLVED, agreement_form="oral")
    real = world.assignments.release
    monkeypatch.setattr(world.assignments, "release", release)
    with pytest.raises(Crash):
        await world.assignments.case_event(case=resolved)
    monkeypatch.setattr(world.assignments, "release", real)
    assert await load(world, "m-a") == 1  # closed, but the reservation is still counted
    await world.assignments.case_event(case=resolved)
    assert await load(world, "m-a") == 0


async def test_the_sweep_rolls_forward_a_decision_whose_writer_died_after_its_claim(
    registry: RegistryHarness, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await mediator(world, "m-a", capacity=50)
    store = world.assignments.repo.case_store
    real = store._after_claims

    async def after_claims(claims: Any) -> None:
        if any(c.outbox.get("outbox") for c in claims):  # the decision's revision: it has the event
            raise Crash
        await real(claims)

    monkeypatch.setattr(store, "_after_claims", after_claims)
    event = registered("c-swept")
    with pytest.raises(Crash):
        await world.assignments.case_registered(event=event, case=event.payload())  # type: ignore[arg-type]
    monkeypatch.setattr(store, "_after_claims", real)
    case = await world.assignments.repo.get_case("c-swept")
    assert case is not None and case.holder is None  # the snapshot is behind its claimed revision

    assert await world.recovery.sweep(older_than=timedelta(0)) == 1
    case = await world.assignments.repo.get_case("c-swept")
    assert case is not None and case.holder == "m-a"
    [decision] = await world.assignments.repo.decisions.find({"case_id": "c-swept"}).to_list()
    assert decision["mediator_id"] == "m-a"  # recorded by the sweep, not only shown from the case
    settings = registry.settings
    records = await read_all(
        settings.kafka_bootstrap, settings.topic(topics.ASSIGNMENTS), expect=10**6, timeout=3
    )
    assert [orjson.loads(r.value)["id"] for r in records if r.key == b"c-swept"] == [decision["_id"]]
    assert await store.unsettled(older_than=timedelta(0)) == []


async def test_a_database_from_before_the_engine_is_converted_and_continued(world: World) -> None:
    await mediator(world, "m-old", capacity=50)
    db = world.service.repo.db
    await db["meta"].delete_one({"_id": MIGRATED})
    today = START.date().isoformat()
    # What the registry wrote before: case projections without versions, grants, decisions.
    for n in range(3):
        case_id = f"c-old-{n}"
        await db["cases"].insert_one(
            {"_id": case_id, "seq": 1, "holder": "m-old", "mediator_id": "m-old", "county": "371302"}
        )
        await db["decisions"].insert_one(
            {
                "_id": f"d-old-{n}",
                "case_id": case_id,
                "seq": 1,
                "county": "371302",
                "trigger": "registered",
                "outcome": "assigned",
                "mediator_id": "m-old",
                "at": datetime(2026, 3, 1, tzinfo=UTC),
                "by": "system:registry",
                "event": {},
                **outbox_fields([]),
            }
        )
        await db["grants"].insert_one({"_id": f"m-old|{case_id}|{today}", "m": "m-old", "day": today})
    await world.recovery.migrate()
    await world.recovery.migrate()  # once only
    assert await load(world, "m-old") == 3
    assert await world.assignments.repo.recent_assignments("m-old", since=START.date()) == 3
    old = await world.assignments.repo.get_case("c-old-0")
    assert old is not None and old.version == 0 and old.applied == ["d-old-0"]
    # The old projections continue: a closing event releases the old holder.
    await world.assignments.case_event(
        case=closing(CaseResolved, "c-old-0", CaseStatus.RESOLVED, agreement_form="oral")
    )
    assert await load(world, "m-old") == 2
    closed = await world.assignments.repo.get_case("c-old-0")
    assert closed is not None and closed.version == 1 and closed.closed
