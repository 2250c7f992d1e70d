"""Assignment against the real database: every criterion, escalation, failure, idempotent
load under redelivery, transfers and manual reassignment, and the Kafka path."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import timedelta
from typing import Any

import pytest

from tests.registry.conftest import RegistryHarness, World, make_world
from tests.support.kafka import eventually, produce, read_all
from tiaojie.contracts import topics
from tiaojie.contracts.common import CaseStatus, Category, RiskLevel, Role
from tiaojie.contracts.envelope import CloudEvent, decode_event, new_event
from tiaojie.contracts.intake import (
    CaseRegistered,
    CaseResolved,
    CaseTransferred,
    CaseWithdrawn,
    RiskRaised,
)
from tiaojie.infra import synthetic
from tiaojie.registry.models import DisciplineIn, MediatorIn, OrganisationIn, RelationIn
from tiaojie.runtime.pii import normalise_id_number

pytestmark = pytest.mark.integration

COUNTY = "371302"
TOWNSHIP = "371302001"
RNG = random.Random(4)


@pytest.fixture
async def world(registry: RegistryHarness) -> World:
    return await make_world(registry)


async def organisations(world: World) -> None:
    """A county centre and a township committee under it."""
    for body in (
        {
            "id": "centre",
            "name": "测试县矛盾纠纷多元化解中心",
            "short_name": "测",
            "kind": "centre",
            "level": "county",
            "county": COUNTY,
            "division_code": COUNTY,
        },
        {
            "id": "tc",
            "name": "测试街道人民调解委员会",
            "short_name": "测街",
            "kind": "township_committee",
            "level": "township",
            "county": COUNTY,
            "division_code": TOWNSHIP,
            "parent_id": "centre",
        },
    ):
        await world.service.file_organisation(data=OrganisationIn.model_validate(body), by="test")


async def mediator(world: World, mediator_id: str, org: str = "tc", **fields: Any) -> str:
    """Register a certified grade-3 full-time mediator (fields override); returns its ID number."""
    id_number = fields.pop("id_number", None) or synthetic.id_number(RNG, COUNTY)
    body = {
        "id": mediator_id,
        "name": "调解员" + mediator_id[-2:],
        "id_number": id_number,
        "county": COUNTY,
        "organisation_ids": [org],
        "full_time": True,
        "grade": "3",
        "certificate_number": "C" + mediator_id,
        "certificate_expires_on": "2027-12-31",
        **fields,
    }
    await world.service.register_mediator(data=MediatorIn.model_validate(body), by="test")
    return id_number


def party_key(world: World, id_number: str) -> str:
    return world.service.protector.keyed_hash(normalise_id_number(id_number))


def registered(
    case_id: str,
    *,
    org: str | None = "tc",
    category: Category = Category.NEIGHBOURHOOD,
    risk: RiskLevel = RiskLevel.ORDINARY,
    party_keys: list[str] | None = None,
) -> CloudEvent:
    data = CaseRegistered(
        case_id=case_id,
        channel="desk",
        county=COUNTY,
        township=TOWNSHIP,
        category=category,
        risk_level=risk,
        organisation_id=org,
        party_keys=party_keys or [],
        received_at=synthetic_now(),
    )
    return new_event(data, source="/tiaojie/intake", subject=case_id, county=COUNTY)


def synthetic_now() -> Any:
    from tests.registry.conftest import START

    return START


async def assign(world: World, case_id: str, **kwargs: Any) -> dict:
    event = registered(case_id, **kwargs)
    await world.assignments.case_registered(event=event, case=event.payload())  # type: ignore[arg-type]
    return await latest(world, case_id)


async def latest(world: World, case_id: str) -> dict:
    decisions = await world.assignments.repo.decisions_of(case_id)
    return decisions[-1].event


async def load(world: World, mediator_id: str) -> int:
    return await world.assignments.repo.load(mediator_id)


def closing(model: type, case_id: str, status: CaseStatus, **extra: Any) -> Any:
    return model(
        case_id=case_id,
        county=COUNTY,
        status=status,
        at=synthetic_now(),
        **extra,
    )


# -- criteria ------------------------------------------------------------------------------


async def test_specialty_decides_between_otherwise_equal_mediators(world: World) -> None:
    await organisations(world)
    await mediator(world, "m-general")
    await mediator(world, "m-family", specialties=["marriage_family"])
    family = await assign(world, "c-family", category=Category.MARRIAGE_FAMILY)
    assert family["mediator_id"] == "m-family"
    assert family["breakdown"]["specialty"] == 1.0
    assert [c["mediator_id"] for c in family["runners_up"]] == ["m-general"]
    assert family["runners_up"][0]["breakdown"]["specialty"] == 0.5
    assert "擅长婚姻家庭纠纷" in family["reason"]
    neighbours = await assign(world, "c-neighbours", category=Category.NEIGHBOURHOOD)
    assert neighbours["mediator_id"] == "m-general"  # a generalist beats a specialist elsewhere


async def test_grave_risk_needs_grade_two_and_escalates_to_the_centre(world: World) -> None:
    await organisations(world)
    await mediator(world, "m-grade3", grade="3")
    await mediator(world, "m-grade4", grade="4")
    await mediator(world, "m-centre2", org="centre", grade="2")
    event = await assign(world, "c-grave", risk=RiskLevel.GRAVE)
    assert event["mediator_id"] == "m-centre2"
    assert event["organisation_id"] == "centre" and event["escalated_from"] == "tc"
    assert event["tried"] == ["tc", "centre"]
    assert {(e["mediator_id"], tuple(e["reasons"])) for e in event["excluded"]} == {
        ("m-grade3", ("grade_below_required",)),
        ("m-grade4", ("grade_below_required",)),
    }
    assert "已逐级上报" in event["reason"] and "等级不满足" in event["reason"]
    ordinary = await assign(world, "c-ordinary")
    assert ordinary["organisation_id"] == "tc" and ordinary["escalated_from"] is None


async def test_required_grade_is_configurable(registry: RegistryHarness) -> None:
    world = await make_world(registry, required_grade={"grave": 1, "serious": 2})
    await organisations(world)
    await mediator(world, "m-grade2", org="centre", grade="2")
    await mediator(world, "m-grade3", grade="3")
    serious = await assign(world, "c-serious", risk=RiskLevel.SERIOUS)
    assert serious["mediator_id"] == "m-grade2"
    grave = (await world.assignments.repo.decisions_of(await assign_raw(world, "c-grave2", RiskLevel.GRAVE)))[
        -1
    ]
    assert grave.outcome == "failed"


async def assign_raw(world: World, case_id: str, risk: RiskLevel) -> str:
    event = registered(case_id, risk=risk)
    await world.assignments.case_registered(event=event, case=event.payload())  # type: ignore[arg-type]
    return case_id


async def test_capacity_is_a_hard_limit_and_headroom_ranks(world: World) -> None:
    await organisations(world)
    await mediator(world, "m-small", capacity=1)
    await mediator(world, "m-large", capacity=10)
    first = await assign(world, "c-1")
    holder = first["mediator_id"]
    second = await assign(world, "c-2")
    if holder == "m-small":
        assert second["mediator_id"] == "m-large"
        assert {"mediator_id": "m-small", "organisation_id": "tc", "reasons": ["at_capacity"]} in second[
            "excluded"
        ]
    third = await assign(world, "c-3")
    assert third["mediator_id"] == "m-large" or holder == "m-large"
    assert await load(world, "m-small") <= 1


async def test_everyone_at_capacity_escalates(world: World) -> None:
    await organisations(world)
    await mediator(world, "m-only", capacity=1)
    await mediator(world, "m-centre", org="centre", grade="2")
    assert (await assign(world, "c-1"))["mediator_id"] == "m-only"
    second = await assign(world, "c-2")
    assert second["mediator_id"] == "m-centre" and second["escalated_from"] == "tc"


async def test_a_mediator_who_is_a_party_or_related_to_one_is_excluded(world: World) -> None:
    await organisations(world)
    own = await mediator(world, "m-party")
    relative = synthetic.id_number(RNG, COUNTY)
    await mediator(
        world, "m-related", relations=[RelationIn(relation="配偶", id_number=relative).model_dump()]
    )
    await mediator(world, "m-free", capacity=50)
    keys = [party_key(world, own), party_key(world, relative)]
    for n in range(6):
        event = await assign(world, f"c-conflict-{n}", party_keys=keys)
        assert event["mediator_id"] == "m-free"
        reasons = {e["mediator_id"]: e["reasons"] for e in event["excluded"]}
        assert reasons == {"m-party": ["conflict_of_interest"], "m-related": ["conflict_of_interest"]}
    other = await assign(
        world, "c-unrelated", party_keys=[party_key(world, synthetic.id_number(RNG, COUNTY))]
    )
    assert other["mediator_id"] in {"m-party", "m-related"}  # m-free has had six; fairness turns


async def test_eligibility_is_computed_on_the_day_of_assignment(world: World) -> None:
    await organisations(world)
    await mediator(world, "m-expiring", certificate_expires_on="2026-03-10", capacity=50)
    await mediator(world, "m-centre", org="centre", grade="2", capacity=50)
    assert (await assign(world, "c-before"))["mediator_id"] == "m-expiring"
    world.clock.advance(timedelta(days=10))
    after = await assign(world, "c-after")
    assert after["mediator_id"] == "m-centre"
    assert ["certificate_expired"] in [e["reasons"] for e in after["excluded"]]


async def test_a_suspension_takes_effect_for_its_period_only(world: World) -> None:
    await organisations(world)
    await mediator(world, "m-disciplined", capacity=50)
    await mediator(world, "m-centre", org="centre", grade="2", capacity=50)
    await world.service.add_discipline(
        mediator_id="m-disciplined",
        record=DisciplineIn(
            prohibition="gifts", sanction="suspension", starts_on="2026-03-02", ends_on="2026-04-01"
        ),
        by="bureau",
    )
    during = await assign(world, "c-during")
    assert during["mediator_id"] == "m-centre"
    assert ["suspended"] in [e["reasons"] for e in during["excluded"]]
    world.clock.advance(timedelta(days=31))
    assert (await assign(world, "c-after"))["mediator_id"] == "m-disciplined"


async def test_nobody_eligible_anywhere_publishes_assignment_failed(world: World) -> None:
    await organisations(world)
    await mediator(world, "m-revoked", status="revoked")
    await mediator(world, "m-uncertified", certificate_number=None, certificate_expires_on=None)
    event = registered("c-nobody")
    await world.assignments.case_registered(event=event, case=event.payload())  # type: ignore[arg-type]
    [decision] = await world.assignments.repo.decisions_of("c-nobody")
    assert decision.outcome == "failed" and decision.mediator_id is None
    assert decision.event["tried"] == ["tc", "centre"]
    assert {tuple(e["reasons"]) for e in decision.event["excluded"]} == {("revoked",), ("uncertified",)}
    assert "均无符合条件的调解员" in decision.event["reason"]
    case = await world.assignments.repo.get_case("c-nobody")
    assert case is not None and case.holder is None


async def test_an_unrouted_case_goes_to_the_county_centre(world: World) -> None:
    await organisations(world)
    await mediator(world, "m-centre", org="centre", grade="2")
    event = await assign(world, "c-unrouted", org=None)
    assert event["organisation_id"] == "centre" and event["tried"] == ["centre"]


# -- determinism and load ---------------------------------------------------------------------


async def test_same_state_same_choice(registry: RegistryHarness) -> None:
    choices = []
    for _ in range(2):
        world = await make_world(registry)
        await organisations(world)
        for i in range(4):
            await mediator(
                world, f"m-{i}", id_number=synthetic.id_number(random.Random(i), COUNTY), capacity=50
            )
        choices.append([(await assign(world, f"c-{n}"))["mediator_id"] for n in range(12)])
    assert choices[0] == choices[1]
    assert sorted(set(choices[0])) == ["m-0", "m-1", "m-2", "m-3"]


async def test_redelivered_events_never_double_the_load(world: World) -> None:
    await organisations(world)
    await mediator(world, "m-a", capacity=50)
    event = registered("c-redelivered")
    for _ in range(3):  # the broker may deliver an event more than once
        await world.assignments.case_registered(event=event, case=event.payload())  # type: ignore[arg-type]
    decisions = await world.assignments.repo.decisions_of("c-redelivered")
    assert len(decisions) == 1 and await load(world, "m-a") == 1
    resolved = closing(CaseResolved, "c-redelivered", CaseStatus.RESOLVED, agreement_form="written")
    for _ in range(3):
        await world.assignments.case_event(case=resolved)
    assert await load(world, "m-a") == 0
    # A replay of the whole topic delivers the registration again after the closure.
    await world.assignments.case_registered(event=event, case=event.payload())  # type: ignore[arg-type]
    assert await load(world, "m-a") == 0
    assert len(await world.assignments.repo.decisions_of("c-redelivered")) == 1


def transferred(
    case_id: str, *, to: str, transfer_id: str, status: CaseStatus = CaseStatus.TRANSFERRED
) -> CloudEvent:
    """intake's CaseTransferred, once it moved the case after referral's TransferAccepted."""
    data = CaseTransferred(
        case_id=case_id,
        county=COUNTY,
        status=CaseStatus.TRANSFERRED,
        at=synthetic_now(),
        organisation_id=to,
        from_organisation_id="tc",
        transfer_id=transfer_id,
        kind="escalate_up",
    )
    return new_event(data, source="/tiaojie/intake", subject=case_id, county=COUNTY)


async def test_withdrawn_and_transferred_cases_release_their_mediator(world: World) -> None:
    await organisations(world)
    await mediator(world, "m-a", capacity=50)
    await mediator(world, "m-centre", org="centre", grade="2", capacity=50)
    await assign(world, "c-w")
    await assign(world, "c-t")
    assert await load(world, "m-a") == 2
    await world.assignments.case_event(
        case=closing(CaseWithdrawn, "c-w", CaseStatus.WITHDRAWN, previous_status=CaseStatus.ASSIGNED)
    )
    assert await load(world, "m-a") == 1
    # intake's CaseTransferred alone moves the case: the holder in the old organisation is
    # released and the case gets a mediator in the new one, in one decision.
    moved = transferred("c-t", to="centre", transfer_id="t-1")
    for _ in range(2):  # redelivered
        await world.assignments.case_transferred(event=moved, moved=moved.payload())  # type: ignore[arg-type]
    decisions = await world.assignments.repo.decisions_of("c-t")
    assert [d.trigger for d in decisions] == ["registered", "transfer"]
    assert decisions[-1].event["previous_mediator_id"] is None  # intake cleared it with the move
    assert decisions[-1].organisation_id == "centre" and decisions[-1].event["transfer_id"] == "t-1"
    assert decisions[-1].mediator_id == "m-centre"
    assert await load(world, "m-centre") == 1 and await load(world, "m-a") == 0
    case = await world.assignments.repo.get_case("c-t")
    assert case is not None and case.holder == "m-centre" and case.organisation_id == "centre"
    # A late redelivery, alone or in a batch, does not release the new holder.
    await world.assignments.case_events(events=[(moved, moved.payload())])  # type: ignore[list-item]
    assert await load(world, "m-centre") == 1
    assert len(await world.assignments.repo.decisions_of("c-t")) == 2


async def test_a_transfer_accepted_alone_no_longer_reassigns(registry: RegistryHarness) -> None:
    """The registry acts on intake's CaseTransferred alone: it no longer reads referral's
    topic, so a TransferAccepted reaches none of its handlers (and cannot race intake's move)."""
    consumer = registry.app.state.host.consumer
    assert consumer.topics == [topics.CASES]
    assert not hasattr(registry.assignments, "transfer_accepted")


async def test_a_transfer_in_one_batch_with_the_registration_is_decided_in_order(world: World) -> None:
    await organisations(world)
    await mediator(world, "m-a", capacity=50)
    await mediator(world, "m-centre", org="centre", grade="2", capacity=50)
    first, moved = registered("c-batch-t"), transferred("c-batch-t", to="centre", transfer_id="t-2")
    resolved = closing(CaseResolved, "c-other", CaseStatus.RESOLVED, agreement_form="oral")
    other = registered("c-other")
    batch = [(first, first.payload()), (other, other.payload()), (moved, moved.payload())]
    await world.assignments.case_events(events=batch)  # type: ignore[arg-type]
    closed = new_event(resolved, source="/tiaojie/intake", subject="c-other", county=COUNTY)
    await world.assignments.case_events(events=[*batch, (closed, resolved)])  # type: ignore[list-item]
    decisions = await world.assignments.repo.decisions_of("c-batch-t")
    assert [(d.trigger, d.mediator_id) for d in decisions] == [
        ("registered", "m-a"),
        ("transfer", "m-centre"),
    ]
    assert await load(world, "m-centre") == 1 and await load(world, "m-a") == 0  # c-other closed


# -- manual reassignment over HTTP --------------------------------------------------------------


async def test_manual_reassignment_by_a_centre_user(registry: RegistryHarness) -> None:
    suffix = uuid.uuid4().hex[:6]
    world = World(
        service=registry.service,
        assignments=registry.assignments,
        recovery=registry.app.state.recovery,
        clock=registry.clock,
        settings=registry.settings,
    )
    for body in (
        {
            "id": f"centre-{suffix}",
            "name": f"中心{suffix}",
            "short_name": "中",
            "kind": "centre",
            "level": "county",
            "county": COUNTY,
            "division_code": COUNTY,
        },
    ):
        await world.service.file_organisation(data=OrganisationIn.model_validate(body), by="test")
    await mediator(world, f"m1-{suffix}", org=f"centre-{suffix}", grade="2", capacity=50)
    await mediator(world, f"m2-{suffix}", org=f"centre-{suffix}", grade="2", capacity=50)
    await mediator(world, f"m3-{suffix}", org=f"centre-{suffix}", grade="2", status="suspended")
    case_id = f"c-manual-{suffix}"
    first = await assign(world, case_id, org=f"centre-{suffix}")
    other = f"m2-{suffix}" if first["mediator_id"] == f"m1-{suffix}" else f"m1-{suffix}"
    centre = registry.headers(Role.CENTER, [COUNTY])
    url = f"/api/v1/cases/{case_id}/assignment"

    refused = await registry.http.post(
        url, json={"mediator_id": f"m3-{suffix}", "reason": "当事人要求"}, headers=centre
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "suspended"
    desk = await registry.http.post(
        url,
        json={"mediator_id": other, "reason": "当事人要求"},
        headers=registry.headers(Role.DESK, [COUNTY]),
    )
    assert desk.status_code == 403
    elsewhere = await registry.http.post(
        url,
        json={"mediator_id": other, "reason": "当事人要求"},
        headers=registry.headers(Role.CENTER, ["371311"]),
    )
    assert elsewhere.status_code == 404

    done = await registry.http.post(
        url,
        json={"mediator_id": other, "reason": "原调解员与当事人系同村，申请回避"},
        headers={**centre, "Idempotency-Key": "k1"},
    )
    assert done.status_code == 201, done.text
    event = done.json()["event"]
    assert event["manual"] is True and event["assigned_by"] == "test-center"
    assert event["previous_mediator_id"] == first["mediator_id"] and event["reason"].startswith("原调解员")
    again = await registry.http.post(
        url,
        json={"mediator_id": other, "reason": "原调解员与当事人系同村，申请回避"},
        headers={**centre, "Idempotency-Key": "k1"},
    )
    assert again.status_code == 201 and again.json()["id"] == done.json()["id"]
    assert await load(world, other) == 1 and await load(world, first["mediator_id"]) == 0
    shown = (await registry.http.get(url, headers=centre)).json()
    assert shown["mediator_id"] == other and [d["trigger"] for d in shown["decisions"]] == [
        "registered",
        "manual",
    ]

    await world.assignments.case_event(
        case=closing(CaseResolved, case_id, CaseStatus.RESOLVED, agreement_form="oral")
    )
    closed = await registry.http.post(
        url, json={"mediator_id": first["mediator_id"], "reason": "再次调整"}, headers=centre
    )
    assert closed.status_code == 409


# -- the Kafka path --------------------------------------------------------------------------------


async def test_case_registered_on_kafka_yields_mediator_assigned_on_kafka(registry: RegistryHarness) -> None:
    suffix = uuid.uuid4().hex[:6]
    world = World(
        service=registry.service,
        assignments=registry.assignments,
        recovery=registry.app.state.recovery,
        clock=registry.clock,
        settings=registry.settings,
    )
    await world.service.file_organisation(
        data=OrganisationIn(
            id=f"k-{suffix}",
            name=f"卡夫卡中心{suffix}",
            short_name="卡",
            kind="centre",
            level="county",
            county=COUNTY,
            division_code=COUNTY,
        ),
        by="test",
    )
    await mediator(world, f"mk-{suffix}", org=f"k-{suffix}", grade="2")
    case_id = f"c-kafka-{suffix}"
    event = registered(case_id, org=f"k-{suffix}")
    settings = registry.settings
    await produce(
        settings.kafka_bootstrap,
        settings.topic(topics.CASES),
        [event.to_bytes(), event.to_bytes()],
        key=case_id.encode(),
    )

    async def published() -> list:
        records = await read_all(
            settings.kafka_bootstrap, settings.topic(topics.ASSIGNMENTS), expect=1000, timeout=2
        )
        return [r for r in records if r.key == case_id.encode()]

    found = await eventually(published, timeout=60)
    assigned = decode_event(found[0].value)
    assert assigned.type == "tiaojie.registry.MediatorAssigned"
    assert assigned.data["mediator_id"] == f"mk-{suffix}" and assigned.data["breakdown"]
    assert len(await registry.assignments.repo.decisions_of(case_id)) == 1
    assert await registry.assignments.repo.load(f"mk-{suffix}") == 1
    metrics = (await registry.http.get("/metrics")).text
    assert f'tiaojie_assignments_total{{county="{COUNTY}",outcome="assigned"}}' in metrics
    assert f'tiaojie_mediator_load_count{{county="{COUNTY}"}}' in metrics


async def test_concurrent_redeliveries_decide_once(world: World) -> None:
    await organisations(world)
    await mediator(world, "m-a", capacity=50)
    await mediator(world, "m-b", capacity=50)
    events = [registered(f"c-par-{n}") for n in range(8)]
    # Every event three times, all at once: as after a rebalance with replicas racing.
    await asyncio.gather(
        *(
            world.assignments.case_registered(event=e, case=e.payload())  # type: ignore[arg-type]
            for e in events * 3
        )
    )
    for e in events:
        assert len(await world.assignments.repo.decisions_of(e.subject or "")) == 1
    assert await load(world, "m-a") + await load(world, "m-b") == 8
    since = synthetic_now().date()
    recent = [await world.assignments.repo.recent_assignments(m, since=since) for m in ("m-a", "m-b")]
    assert sum(recent) == 8


async def test_a_risk_raised_beyond_the_holders_grade_reassigns(world: World) -> None:
    await organisations(world)
    await mediator(world, "m-grade4", grade="4")
    await mediator(world, "m-centre", org="centre", grade="2")
    first = await assign(world, "c-risk")
    assert first["mediator_id"] == "m-grade4"

    def raised(level: RiskLevel) -> CloudEvent:
        data = RiskRaised(
            case_id="c-risk",
            county=COUNTY,
            status=CaseStatus.RECEIVED,
            at=synthetic_now(),
            organisation_id="tc",
            risk_level=level,
            signals=["threat"],
        )
        return new_event(data, source="/tiaojie/intake", subject="c-risk", county=COUNTY)

    serious = raised(RiskLevel.SERIOUS)  # 较大 needs 三级: the grade-4 holder must go too
    grave = raised(RiskLevel.GRAVE)
    for event in (serious, serious, grave, grave):
        await world.assignments.risk_raised(event=event, risk=event.payload())  # type: ignore[arg-type]
    decisions = await world.assignments.repo.decisions_of("c-risk")
    assert [d.trigger for d in decisions] == ["registered", "risk_raised"]
    assert decisions[-1].mediator_id == "m-centre" and decisions[-1].event["escalated_from"] == "tc"
    assert decisions[-1].event["previous_mediator_id"] == "m-grade4"
    assert await load(world, "m-centre") == 1 and await load(world, "m-grade4") == 0
