"""The referral rules against the real FerretDB and Kafka: the closed loop through the
projections, timers that survive restarts and fire exactly once with two replicas, and
transfers validated against the organisation hierarchy."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from tests.referral.conftest import (
    CENTRE,
    COMMITTEE,
    OTHER_COMMITTEE,
    T0,
    Factory,
    assignment_recorded,
    court,
    events_about,
    referral_data,
    registered,
    stop,
)
from tests.support.data import COUNTY
from tests.support.kafka import eventually, read_all
from tiaojie.contracts import topics
from tiaojie.contracts.common import AgencyKind, CaseStatus, RiskLevel
from tiaojie.contracts.intake import CaseResolved, CaseTransferred
from tiaojie.referral.models import TransferDoc
from tiaojie.referral.service import referral_id_for
from tiaojie.runtime.clock import ManualClock
from tiaojie.runtime.errors import Conflict, Invalid, NotFound
from tiaojie.runtime.kafka import client_kwargs
from tiaojie.runtime.pii import Protector
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.integration


async def test_agency_registration_creates_its_topics_and_is_idempotent(
    make_referral: Factory, settings: RuntimeSettings, unique: str
) -> None:
    parts = await make_referral(ManualClock(T0))
    agency_id = f"court-{unique}"
    agency, created, credential = await parts.service.register_agency(
        agency_id=agency_id,
        kind=AgencyKind.COURT,
        county=COUNTY,
        name="兰山区人民法院",
        source=None,
        by="admin",
    )
    assert created and agency.source == f"/agencies/{agency_id}"
    assert credential is not None and credential.username == agency.kafka_principal
    admin = AIOKafkaAdminClient(**client_kwargs(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
    finally:
        await admin.close()
    inbound = settings.topic(topics.agency_referrals(agency_id))
    assert {inbound, topics.dlq(inbound), settings.topic(topics.agency_outcomes(agency_id))} <= existing
    again, created_again, no_credential = await parts.service.register_agency(
        agency_id=agency_id,
        kind=AgencyKind.COURT,
        county=COUNTY,
        name="兰山区人民法院",
        source=None,
        by="admin",
    )
    assert not created_again and again.id == agency_id and no_credential is None
    with pytest.raises(Conflict):
        await parts.service.register_agency(
            agency_id=agency_id,
            kind=AgencyKind.POLICE,
            county=COUNTY,
            name="兰山公安分局",
            source=None,
            by="admin",
        )
    announced = await read_all(
        settings.kafka_bootstrap, settings.topic(topics.AGENCIES), expect=500, timeout=3
    )
    assert len([r for r in announced if r.key == agency_id.encode()]) == 1


async def test_the_closed_loop_through_the_projections(
    make_referral: Factory, settings: RuntimeSettings, unique: str
) -> None:
    clock = ManualClock(T0)
    parts = await make_referral(clock)
    service = parts.service
    agency = await court(parts, f"court-{unique}")
    ref = f"(2026)鲁1302民诉前调{unique}号"
    doc, created = await service.receive(agency=agency, data=referral_data(ref), event_id="e-1")
    assert created and doc.status == "requested" and doc.organisation_id == COMMITTEE  # routed by township
    assert doc.id == referral_id_for(agency.id, ref)
    again, created_again = await service.receive(agency=agency, data=referral_data(ref), event_id="e-2")
    assert not created_again and again.id == doc.id  # the same reference is the same referral

    clock.advance(timedelta(hours=2))
    accepted = await service.accept_referral(referral_id=doc.id, by="desk-1", counties=[COUNTY])
    assert accepted.status == "accepted" and accepted.due is not None
    case_id = f"case-{unique}"
    # In one batch; the assignment names no referral: it is found as the case's.
    await service.on_case_events(events=[registered(case_id, doc.id), assignment_recorded(case_id)])
    resolved = CaseResolved(
        case_id=case_id,
        county=COUNTY,
        status=CaseStatus.RESOLVED,
        at=T0 + timedelta(days=5),
        organisation_id=COMMITTEE,
        referral_id=doc.id,
        agreement_form="written",
        agreement_summary="被申请人于2026年4月30日前付清货款",
    )
    await service.on_case_events(events=[resolved])
    closed = await service.get_referral(doc.id)
    assert closed is not None
    assert (closed.status, closed.case_id, closed.judicial_confirmation_ready) == ("resolved", case_id, True)
    version = closed.version
    await service.on_case_events(events=[resolved])  # redelivered: no second effect
    assert (await service.get_referral(doc.id)).version == version  # type: ignore[union-attr]

    # What the court hears, in order, every notice under its own reference.
    outcomes = await read_all(
        settings.kafka_bootstrap, settings.topic(topics.agency_outcomes(agency.id)), expect=4, timeout=30
    )
    notices = [orjson.loads(r.value) for r in outcomes]
    assert [n["type"] for n in notices] == [
        "tiaojie.agency.AgencyReferralReceived",
        "tiaojie.agency.AgencyReferralAccepted",
        "tiaojie.agency.AgencyReferralInMediation",
        "tiaojie.agency.AgencyReferralClosed",
    ]
    assert {r.key for r in outcomes} == {ref.encode()}
    assert all(n["data"]["agency_ref"] == ref for n in notices)
    assert notices[-1]["data"]["agreement_summary"] == "被申请人于2026年4月30日前付清货款"
    assert "王某" not in str(notices) and "371302198001011239" not in str(notices)

    # Our own topic: intake gets the sealed submission, only intake's key opens it.
    ours = events_about(
        await read_all(settings.kafka_bootstrap, settings.topic(topics.REFERRALS), expect=2000, timeout=3),
        doc.id,
    )
    types = [e.type for e in ours]
    assert types == [
        "tiaojie.referral.ReferralRequested",
        "tiaojie.referral.ReferralAccepted",
        "tiaojie.referral.ReferralInMediation",
        "tiaojie.referral.ReferralClosed",
    ]
    sealed = ours[1].data["submission_enc"]
    assert "王某" not in sealed
    protector = Protector(
        encryption_key=settings.pii_key.get_secret_value(), match_key=settings.match_key.get_secret_value()
    )
    assert orjson.loads(protector.decrypt(sealed))["applicants"][0]["name"] == "王某"


async def test_the_registrys_assignment_is_not_read_mediation_starts_with_the_case_event(
    make_referral: Factory, settings: RuntimeSettings, unique: str
) -> None:
    """The registry's MediatorAssigned is a proposal; the case is assigned when intake records
    it (after 受理) on the case's own topic, and only then is the sender told."""
    parts = await make_referral(ManualClock(T0))
    consumed = parts.host.consumer.topics
    assert topics.CASES in consumed and topics.ASSIGNMENTS not in consumed
    agency = await court(parts, f"court-{unique}")
    doc, _ = await parts.service.receive(agency=agency, data=referral_data(f"R-{unique}"), event_id=None)
    await parts.service.accept_referral(referral_id=doc.id, by="desk-1", counties=[COUNTY])
    case_id = f"case-{unique}"
    # Whatever the registry proposed on its assignments topic, nobody here reads it.
    await parts.service.on_case_events(events=[registered(case_id, doc.id)])
    opened = await parts.service.get_referral(doc.id)
    assert opened is not None and (opened.status, opened.case_id) == ("accepted", case_id)
    assert not opened.mediator_assigned
    await parts.service.on_case_events(events=[assignment_recorded(case_id, doc.id)])
    mediating = await parts.service.get_referral(doc.id)
    assert mediating is not None and mediating.status == "in_mediation" and mediating.mediator_assigned
    notices = await read_all(
        settings.kafka_bootstrap, settings.topic(topics.agency_outcomes(agency.id)), expect=3, timeout=30
    )
    assert [orjson.loads(n.value)["type"] for n in notices] == [
        "tiaojie.agency.AgencyReferralReceived",
        "tiaojie.agency.AgencyReferralAccepted",
        "tiaojie.agency.AgencyReferralInMediation",
    ]


async def test_staff_of_another_county_and_other_agencies_see_nothing(
    make_referral: Factory, unique: str
) -> None:
    parts = await make_referral(ManualClock(T0))
    agency = await court(parts, f"court-{unique}")
    doc, _ = await parts.service.receive(agency=agency, data=referral_data(f"R-{unique}"), event_id=None)
    with pytest.raises(NotFound):
        await parts.service.referral_for(doc.id, counties=["371311"], agency_id=None)
    with pytest.raises(NotFound):
        await parts.service.referral_for(doc.id, counties=None, agency_id="police-elsewhere")
    with pytest.raises(NotFound):
        await parts.service.accept_referral(referral_id=doc.id, by="desk-9", counties=["371311"])
    assert (await parts.service.referral_for(doc.id, counties=None, agency_id=agency.id)).id == doc.id


async def test_a_referral_to_a_county_without_bodies_or_a_wrong_township_is_refused(
    make_referral: Factory, unique: str
) -> None:
    parts = await make_referral(ManualClock(T0))
    agency = await court(parts, f"court-{unique}")
    elsewhere = referral_data(f"R1-{unique}").model_copy(
        update={
            "submission": referral_data("x").submission.model_copy(
                update={"county": "371311", "township": None}
            )
        }
    )
    with pytest.raises(Invalid) as nobody:
        await parts.service.receive(agency=agency, data=elsewhere, event_id=None)
    assert nobody.value.errors[0].code == "no_receiving_body"
    wrong = referral_data(f"R2-{unique}").model_copy(
        update={"submission": referral_data("x").submission.model_copy(update={"township": "371311001"})}
    )
    with pytest.raises(Invalid) as township:
        await parts.service.receive(agency=agency, data=wrong, event_id=None)
    assert township.value.errors[0].field == "submission.township"


async def test_timers_fire_exactly_once_with_two_replicas(
    make_referral: Factory, settings: RuntimeSettings, unique: str
) -> None:
    clock = ManualClock(T0)
    first = await make_referral(clock)
    second = await make_referral(clock)
    agency = await court(first, f"court-{unique}")
    ids = []
    for n in range(6):
        doc, _ = await first.service.receive(
            agency=agency, data=referral_data(f"R{n}-{unique}"), event_id=None
        )
        ids.append(doc.id)
    clock.advance(timedelta(days=4))  # past the response deadline: reminder and overdue both due
    fired = await asyncio.gather(*(p.service.sweep() for p in (first, second, first, second)))
    assert sum(fired) == 12  # 6 reminders + 6 overdue escalations, however the replicas raced
    assert sum(await asyncio.gather(first.service.sweep(), second.service.sweep())) == 0
    for rid in ids:
        state = await second.service.get_referral(rid)
        assert state is not None and state.overdue and state.overdue_stages == ["response"]
        assert [h.action for h in state.history].count("response-overdue") == 1
    records = await read_all(
        settings.kafka_bootstrap, settings.topic(topics.REFERRALS), expect=5000, timeout=5
    )
    for rid in ids:
        kinds = [e.type for e in events_about(records, rid)]
        assert kinds.count("tiaojie.referral.DeadlineReminded") == 1
        assert kinds.count("tiaojie.referral.DeadlineOverdue") == 1
    overdue = next(e for e in events_about(records, ids[0]) if e.type == "tiaojie.referral.DeadlineOverdue")
    # Escalated to the committee's parent, which here is also the county centre.
    assert overdue.data["escalated_to"] == [CENTRE]
    await first.service.refresh_overdue()
    gauge = first.host.registry.get_sample_value(
        "tiaojie_referrals_overdue", {"county": COUNTY, "agency_kind": "court"}
    )
    assert gauge == 6
    # Answering clears the overdue state, once.
    await asyncio.gather(
        first.service.accept_referral(referral_id=ids[0], by="desk-1", counties=[COUNTY]),
        second.service.accept_referral(referral_id=ids[0], by="desk-2", counties=[COUNTY]),
    )
    await second.service.refresh_overdue()
    assert (
        second.host.registry.get_sample_value(
            "tiaojie_referrals_overdue", {"county": COUNTY, "agency_kind": "court"}
        )
        == 5
    )
    records = await read_all(
        settings.kafka_bootstrap, settings.topic(topics.REFERRALS), expect=5000, timeout=5
    )
    kinds = [e.type for e in events_about(records, ids[0])]
    assert kinds.count("tiaojie.referral.ReferralAccepted") == 1
    assert kinds.count("tiaojie.referral.DeadlineCleared") == 1
    escalations = sum(
        p.host.registry.get_sample_value(
            "tiaojie_escalations_total", {"county": COUNTY, "reason": "overdue_response"}
        )
        or 0
        for p in (first, second)
    )
    assert escalations == 6


async def test_timers_survive_a_restart(make_referral: Factory, unique: str) -> None:
    clock = ManualClock(T0)
    before = await make_referral(clock)
    agency = await court(before, f"police-{unique}", AgencyKind.POLICE)
    doc, _ = await before.service.receive(
        agency=agency, data=referral_data(f"P-{unique}", "police"), event_id=None
    )
    await before.service.accept_referral(referral_id=doc.id, by="desk-1", counties=[COUNTY])
    await stop(before)  # the process is gone; only the database remembers

    clock.advance(timedelta(days=45))
    after = await make_referral(clock)
    assert await after.service.sweep() == 2  # the handling reminder and the overdue escalation
    state = await after.service.get_referral(doc.id)
    assert state is not None and state.overdue_stages == ["handling"]
    assert (
        state.timers["handling-remind"].state == "fired" and state.timers["handling-overdue"].state == "fired"
    )


async def test_an_extension_reschedules_the_timers(make_referral: Factory, unique: str) -> None:
    clock = ManualClock(T0)
    parts = await make_referral(clock)
    agency = await court(parts, f"court-{unique}")
    doc, _ = await parts.service.receive(agency=agency, data=referral_data(f"D-{unique}"), event_id=None)
    accepted = await parts.service.accept_referral(referral_id=doc.id, by="desk-1", counties=[COUNTY])
    assert accepted.due is not None
    extended = await parts.service.extend(
        subject_kind="referral",
        subject_id=doc.id,
        by="desk-1",
        counties=[COUNTY],
        days=30,
        by_agreement=True,
        reason="双方同意延长调解期限",
    )
    assert extended.due is not None and extended.due > accepted.due
    clock.set(accepted.due + timedelta(hours=1))  # the old deadline passed: nothing is overdue
    await parts.service.sweep()
    state = await parts.service.get_referral(doc.id)
    assert state is not None and not state.overdue
    clock.set(extended.due + timedelta(minutes=1))
    await parts.service.sweep()
    state = await parts.service.get_referral(doc.id)
    assert state is not None and state.overdue_stages == ["handling"]


async def test_transfers_follow_the_hierarchy_and_every_hop_is_kept(
    make_referral: Factory, settings: RuntimeSettings, unique: str
) -> None:
    clock = ManualClock(T0)
    parts = await make_referral(clock)
    service = parts.service
    case_id = f"case-{unique}"
    await service.on_case_events(events=[registered(case_id)])  # at the county centre

    async def ask(
        kind: str, to: str, *, due_days: int | None = None, reason_code: str = "", county: str = COUNTY
    ) -> TransferDoc:
        doc, _ = await service.request_transfer(
            case_id=case_id,
            kind=kind,
            to_organisation_id=to,
            reason="属地管辖",
            reason_code=reason_code,
            due_days=due_days,
            by="center-1",
            counties=[county],
            key=None,
        )
        return doc

    with pytest.raises(Invalid) as up_without_reason:
        await ask("escalate_up", COMMITTEE)
    assert {e.code for e in up_without_reason.value.errors} == {"not_superior", "escalation_reason"}
    with pytest.raises(Invalid):
        await ask("assign_down", CENTRE, due_days=20)
    with pytest.raises(NotFound):
        await ask("lateral", COMMITTEE, county="371311")

    # 交办 down to the township committee, with a deadline; declined first, then accepted.
    first = await ask("assign_down", OTHER_COMMITTEE, due_days=20)
    with pytest.raises(Conflict):  # one open hand-over at a time
        await ask("assign_down", COMMITTEE, due_days=20)
    declined = await service.decline_transfer(
        transfer_id=first.id, by="desk-2", counties=[COUNTY], reason="人员不足"
    )
    assert declined.status == "declined" and declined.decline_reason == "人员不足"
    second = await ask("assign_down", COMMITTEE, due_days=20)
    accepted = await service.accept_transfer(transfer_id=second.id, by="desk-3", counties=[COUNTY])
    assert accepted.status == "accepted" and accepted.due is not None

    # 督办: overdue goes to the assigning centre.
    clock.set(accepted.due + timedelta(minutes=1))
    assert await service.sweep() == 2
    records = await read_all(
        settings.kafka_bootstrap, settings.topic(topics.REFERRALS), expect=5000, timeout=5
    )
    hops = events_about(records, second.id)
    assert [e.type for e in hops] == [
        "tiaojie.referral.TransferRequested",
        "tiaojie.referral.TransferAccepted",
        "tiaojie.referral.DeadlineReminded",
        "tiaojie.referral.DeadlineOverdue",
    ]
    assert hops[1].data["party_keys"] == ["k-applicant"] and hops[1].data["to_organisation_id"] == COMMITTEE
    assert hops[3].data["escalated_to"] == [CENTRE]
    declined_events = events_about(records, first.id)
    assert declined_events[-1].type == "tiaojie.referral.TransferDeclined"

    # Intake moved the case; then 上报 for a grave case goes up to the centre.
    await service.on_case_events(
        events=[
            CaseTransferred(
                case_id=case_id,
                county=COUNTY,
                status=CaseStatus.ACCEPTED,
                at=clock.now(),
                organisation_id=COMMITTEE,
                from_organisation_id=CENTRE,
                transfer_id=second.id,
                kind="assign_down",
            )
        ]
    )
    with pytest.raises(Invalid) as not_grave:
        await ask("escalate_up", CENTRE, reason_code="grave")
    assert not_grave.value.errors[0].code == "not_grave"
    await service.on_case_events(
        events=[registered(case_id, risk_level=RiskLevel.GRAVE, organisation_id=COMMITTEE)]
    )
    up = await ask("escalate_up", CENTRE, reason_code="grave")
    assert up.kind == "escalate_up" and up.from_organisation_id == COMMITTEE
    assert (
        parts.host.registry.get_sample_value(
            "tiaojie_escalations_total", {"county": COUNTY, "reason": "grave"}
        )
        == 1
    )

    _, transfers = await service.hops(case_id=case_id, counties=[COUNTY])
    assert [(t.kind, t.status) for t in transfers] == [
        ("assign_down", "declined"),
        ("assign_down", "accepted"),
        ("escalate_up", "requested"),
    ]


async def test_concurrent_answers_from_two_replicas_apply_once(make_referral: Factory, unique: str) -> None:
    clock = ManualClock(T0)
    first = await make_referral(clock)
    second = await make_referral(clock)
    agency = await court(first, f"court-{unique}")
    doc, _ = await first.service.receive(agency=agency, data=referral_data(f"C-{unique}"), event_id=None)
    results = await asyncio.gather(
        first.service.accept_referral(referral_id=doc.id, by="a", counties=[COUNTY]),
        second.service.decline_referral(
            referral_id=doc.id, by="b", counties=[COUNTY], reason="不属于受理范围"
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1  # the other lost the race and saw an illegal transition
    final = await first.service.get_referral(doc.id)
    assert final is not None and final.version == 2 and final.status in ("accepted", "declined")
    await eventually(lambda: True)


async def test_events_naming_no_referral_find_the_referrals_of_their_cases_in_one_read(
    make_referral: Factory, unique: str
) -> None:
    parts = await make_referral(ManualClock(T0))
    agency = await court(parts, f"court-{unique}")
    referrals = []
    for n in range(2):
        doc, _ = await parts.service.receive(
            agency=agency, data=referral_data(f"N{n}-{unique}"), event_id=None
        )
        await parts.service.accept_referral(referral_id=doc.id, by="desk-1", counties=[COUNTY])
        referrals.append(doc.id)
    cases = [f"case-{unique}-{n}" for n in range(2)]
    await parts.service.on_case_events(
        events=[registered(c, r) for c, r in zip(cases, referrals, strict=True)]
    )
    # A later batch of both cases whose events name no referral: one lookup finds them.
    await parts.service.on_case_events(events=[assignment_recorded(c) for c in cases])
    for case_id, referral_id in zip(cases, referrals, strict=True):
        after = await parts.service.get_referral(referral_id)
        assert after is not None and (after.status, after.case_id) == ("in_mediation", case_id)
