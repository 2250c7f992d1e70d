"""Intake's Kafka side on the real broker: submissions from other systems (idempotent,
invalid ones dead-lettered with their reasons), referrals and transfers from the
referral service, and the organisation projection."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from tests.intake.conftest import CENTRE, COMMITTEE, Intake, body, case_events, organisation, types_of
from tests.support.kafka import eventually, produce, read_all
from tiaojie.contracts import topics
from tiaojie.contracts.common import CaseStatus, Channel, Role
from tiaojie.contracts.envelope import new_event
from tiaojie.contracts.intake import DisputeSubmission, DisputeSubmitted
from tiaojie.contracts.referral import ReferralAccepted, TransferAccepted
from tiaojie.contracts.registry import MediatorAssigned
from tiaojie.intake.service import case_id_for

pytestmark = pytest.mark.integration


async def publish(intake: Intake, topic: str, *events: Any, key: str) -> None:
    await produce(
        intake.settings.kafka_bootstrap,
        intake.settings.topic(topic),
        [e.to_bytes() for e in events],
        key=key.encode(),
    )


async def test_a_redelivered_submission_makes_one_case(intake: Intake, unique: str) -> None:
    submission = DisputeSubmission.model_validate(
        body(unique, channel="system", applicants=[{"name": "孙某", "phone": "13912345678"}])
    )
    event = new_event(
        DisputeSubmitted(submission=submission),
        source="/grid/lanshan",
        subject=f"grid-{unique}",
        county="371302",
    )
    await publish(intake, topics.SUBMISSIONS, event, event, key=f"grid-{unique}")
    case_id = case_id_for(scope="kafka:/grid/lanshan", key=event.id)
    case = await eventually(lambda: intake.service.repo.get_case(case_id))
    assert case.channel == Channel.SYSTEM and case.registered_by == "system:/grid/lanshan"
    await publish(intake, topics.SUBMISSIONS, event, key=f"grid-{unique}")  # replayed once more, later
    events = await case_events(intake, case_id, at_least=2, timeout=5)
    assert types_of(events) == ["CaseRegistered"]
    assert await intake.service.repo.cases.count_documents({"_id": case_id}) == 1


async def test_an_invalid_submission_is_dead_lettered_with_the_same_reasons(
    intake: Intake, unique: str
) -> None:
    data = body(unique, channel="system")
    data["applicants"][0]["id_number"] = "371302202302291234"  # 29 February 2023 does not exist
    data["township"] = "371302999"
    event = new_event(
        DisputeSubmitted(submission=DisputeSubmission.model_validate(data)),
        source="/12345",
        subject=unique,
        county="371302",
    )
    await publish(intake, topics.SUBMISSIONS, event, key=unique)

    async def dead() -> Any:
        records = await read_all(
            intake.settings.kafka_bootstrap,
            intake.settings.topic(topics.dlq(topics.SUBMISSIONS)),
            expect=10_000,
            timeout=2,
        )
        return next((r for r in records if r.key == unique.encode()), None)

    record = await eventually(dead, timeout=30)
    headers = dict(record.headers)
    assert headers["x-tiaojie-reason"] == b"invalid"
    error = headers["x-tiaojie-error"].decode()
    assert (
        "applicants.0.id_number" in error and "township" in error and "身份证号码中的出生日期不存在" in error
    )
    assert "371302202302291234" not in error
    assert await intake.service.repo.get_case(case_id_for(scope="kafka:/12345", key=event.id)) is None


def referral(
    intake: Intake, unique: str, *, case_id: str | None = None, **overrides: Any
) -> ReferralAccepted:
    submission = DisputeSubmission.model_validate(
        body(unique, channel="referral", description="两车在路口刮蹭，交警已认定责任，双方对赔偿金额有争议。")
    )
    return ReferralAccepted(
        referral_id=f"ref-{unique}",
        agency_id="court-lanshan",
        agency_kind="court",
        agency_ref=f"(2026)鲁1302民初{unique[:4]}号",
        referral_kind="delegation",
        county="371302",
        township="371302001",
        organisation_id=COMMITTEE,
        case_id=case_id,
        submission_enc=intake.service.protector.encrypt(submission.model_dump_json()),
        due=intake.clock.now() + timedelta(days=30),
        accepted_at=intake.clock.now(),
        **overrides,
    )


async def test_an_accepted_referral_becomes_an_accepted_case_once(intake: Intake, unique: str) -> None:
    accepted = referral(intake, unique)
    event = new_event(accepted, source="/tiaojie/referral", subject=accepted.referral_id, county="371302")
    await publish(intake, topics.REFERRALS, event, event, key=accepted.referral_id)
    case_id = case_id_for(scope="referral", key=accepted.referral_id)

    async def numbered() -> Any:
        got = await intake.service.repo.get_case(case_id)
        return got if got and got.case_number else None

    case = await eventually(numbered)
    assert case.channel == Channel.REFERRAL and case.referral_id == accepted.referral_id
    assert case.organisation_id == COMMITTEE and case.category == "road_traffic"
    assert case.clock and case.clock.source == "referral" and case.clock.due == accepted.due
    await publish(intake, topics.REFERRALS, event, key=accepted.referral_id)
    events = await case_events(intake, case_id, at_least=3, timeout=5)
    assert types_of(events) == ["CaseRegistered", "CaseAccepted"]
    assert all(e.data["referral_id"] == accepted.referral_id for e in events)
    # Outcomes go back to the agency: every later lifecycle event carries the referral.
    withdrawn = await intake.client.post(
        f"/api/v1/disputes/{case_id}/withdraw", json={"reason": "已撤诉"}, headers=intake.headers(Role.DESK)
    )
    assert withdrawn.status_code == 200
    last = (await case_events(intake, case_id, at_least=3))[-1]
    assert last.type.endswith("CaseWithdrawn") and last.data["referral_id"] == accepted.referral_id


async def test_a_referral_naming_an_existing_case_links_it(intake: Intake, unique: str) -> None:
    created = await intake.client.post(
        "/api/v1/disputes", json=body(unique), headers=intake.headers(Role.DESK)
    )
    case_id = created.json()["id"]
    accepted = referral(intake, unique + "l", case_id=case_id)
    await publish(
        intake,
        topics.REFERRALS,
        new_event(accepted, source="/tiaojie/referral", subject=accepted.referral_id),
        key=accepted.referral_id,
    )

    async def linked() -> bool:
        got = await intake.service.repo.get_case(case_id)
        return got is not None and got.referral_id == accepted.referral_id

    await eventually(linked)
    assert await intake.service.repo.get_case(case_id_for(scope="referral", key=accepted.referral_id)) is None


async def test_an_undecryptable_referral_is_dead_lettered(intake: Intake, unique: str) -> None:
    bad = referral(intake, unique).model_copy(update={"submission_enc": "bm90IGVuY3J5cHRlZA=="})
    await publish(
        intake,
        topics.REFERRALS,
        new_event(bad, source="/tiaojie/referral", subject=bad.referral_id),
        key=bad.referral_id,
    )

    async def dead() -> Any:
        records = await read_all(
            intake.settings.kafka_bootstrap,
            intake.settings.topic(topics.dlq(topics.REFERRALS)),
            expect=10_000,
            timeout=2,
        )
        return next((r for r in records if r.key == bad.referral_id.encode()), None)

    record = await eventually(dead, timeout=30)
    assert dict(record.headers)["x-tiaojie-reason"] == b"undecryptable_submission"


async def assign(intake: Intake, case_id: str, mediator: str, organisation_id: str) -> None:
    decision = MediatorAssigned(
        case_id=case_id,
        county="371302",
        organisation_id=organisation_id,
        mediator_id=mediator,
        mediator_name="调解员",
        score=1.0,
        assigned_at=intake.clock.now(),
    )
    await publish(
        intake,
        topics.ASSIGNMENTS,
        new_event(decision, source="/tiaojie/registry", subject=case_id),
        key=case_id,
    )


async def test_a_transfer_moves_the_case_and_the_new_mediator_resumes_it(intake: Intake, unique: str) -> None:
    created = await intake.client.post(
        "/api/v1/disputes",
        json=body(unique, description="邻居堆放杂物挡路。"),
        headers=intake.headers(Role.DESK),
    )
    case_id = created.json()["id"]
    await intake.client.post(f"/api/v1/disputes/{case_id}/accept", headers=intake.headers(Role.DESK))
    await assign(intake, case_id, "med-old", COMMITTEE)
    await eventually(lambda: _status(intake, case_id, CaseStatus.ASSIGNED))
    intake.clock.advance(timedelta(hours=1))
    moved = TransferAccepted(
        transfer_id=f"tr-{unique}",
        case_id=case_id,
        county="371302",
        kind="escalate_up",
        from_organisation_id=COMMITTEE,
        to_organisation_id=CENTRE,
        accepted_at=intake.clock.now(),
    )
    event = new_event(moved, source="/tiaojie/referral", subject=moved.transfer_id)
    await publish(intake, topics.REFERRALS, event, event, key=moved.transfer_id)
    transferred = await eventually(lambda: _status(intake, case_id, CaseStatus.TRANSFERRED))
    assert transferred.organisation_id == CENTRE and transferred.assignment is None
    assert transferred.case_number and transferred.case_number.startswith("(2026)临兰街")  # the number stays
    # A late decision for the organisation the case left is ignored; the new one is recorded.
    late = MediatorAssigned(
        case_id=case_id,
        county="371302",
        organisation_id=COMMITTEE,
        mediator_id="med-late",
        mediator_name="x",
        score=1.0,
        assigned_at=intake.clock.now() - timedelta(minutes=30),
    )
    await publish(
        intake, topics.ASSIGNMENTS, new_event(late, source="/tiaojie/registry", subject=case_id), key=case_id
    )
    intake.clock.advance(timedelta(minutes=1))
    await assign(intake, case_id, "med-centre", CENTRE)
    resumed = await eventually(lambda: _status(intake, case_id, CaseStatus.ASSIGNED))
    assert resumed.mediator_id == "med-centre"
    events = await case_events(intake, case_id, at_least=6, timeout=6)
    assert types_of(events) == [
        "CaseRegistered",
        "CaseAccepted",
        "CaseAssignmentRecorded",
        "CaseTransferred",
        "CaseAssignmentRecorded",
    ]
    transfer = events[3].data
    assert (
        transfer["status"],
        transfer["from_organisation_id"],
        transfer["organisation_id"],
        transfer["kind"],
    ) == ("transferred", COMMITTEE, CENTRE, "escalate_up")


async def test_a_received_case_stays_received_when_transferred(intake: Intake, unique: str) -> None:
    created = await intake.client.post(
        "/api/v1/disputes", json=body(unique), headers=intake.headers(Role.DESK)
    )
    case_id = created.json()["id"]
    moved = TransferAccepted(
        transfer_id=f"tr-{unique}",
        case_id=case_id,
        county="371302",
        kind="lateral",
        to_organisation_id=CENTRE,
        accepted_at=intake.clock.now(),
    )
    await publish(
        intake,
        topics.REFERRALS,
        new_event(moved, source="/tiaojie/referral", subject=moved.transfer_id),
        key=moved.transfer_id,
    )

    async def moved_over() -> Any:
        got = await intake.service.repo.get_case(case_id)
        return got if got and got.organisation_id == CENTRE else None

    case = await eventually(moved_over)
    assert case.status == CaseStatus.RECEIVED
    accepted = await intake.client.post(
        f"/api/v1/disputes/{case_id}/accept", headers=intake.headers(Role.DESK)
    )
    assert accepted.json()["case_number"].startswith("(2026)临兰人调字第")


async def _status(intake: Intake, case_id: str, status: CaseStatus) -> Any:
    got = await intake.service.repo.get_case(case_id)
    return got if got is not None and got.status == status else None


async def test_the_organisation_projection_keeps_the_newest_version(intake: Intake, unique: str) -> None:
    org_id = f"org-{unique}"
    newer = organisation(org_id, kind="centre", level="county", division="371302", short="新", version=3)
    older = organisation(org_id, kind="centre", level="county", division="371302", short="旧", version=2)
    await publish(
        intake,
        topics.ORGANISATIONS,
        *(
            new_event(o, source="/tiaojie/registry", subject=org_id, id=str(uuid.uuid4()))
            for o in (newer, older)
        ),
        key=org_id,
    )

    async def projected() -> Any:
        return await intake.service.repo.get_organisation(org_id)

    found = await eventually(projected)
    await eventually(lambda: _short(intake, org_id, "新"))
    assert found.source_version in (2, 3)


async def _short(intake: Intake, org_id: str, short: str) -> bool:
    got = await intake.service.repo.get_organisation(org_id)
    return got is not None and got.short_name == short and got.source_version == 3


async def test_a_batch_of_submissions_registers_each_once_links_a_repeat_and_refuses_the_invalid(
    intake: Intake, unique: str
) -> None:
    def submitted(seed: str, **overrides: Any) -> Any:
        data = body(seed, channel="system", **overrides)
        return new_event(
            DisputeSubmitted(submission=DisputeSubmission.model_validate(data)),
            source="/grid/batch",
            subject=seed,
            county="371302",
        )

    plain = [submitted(f"{unique}-{n}") for n in range(10)]
    first, repeat = submitted(f"{unique}-same"), submitted(f"{unique}-same")  # same parties, two events
    invalid = submitted(f"{unique}-bad", township="371302999")
    events = [*plain[:5], first, invalid, repeat, *plain[5:]]
    # One produce call, one key: the consumer fetches them together.
    await publish(intake, topics.SUBMISSIONS, *events, key=f"batch-{unique}")

    def case_of(event: Any) -> str:
        return case_id_for(scope="kafka:/grid/batch", key=event.id)

    async def all_there() -> bool:
        found = [await intake.service.repo.get_case(case_of(e)) for e in [*plain, first]]
        return all(found) and await intake.service.repo.link_of(case_of(repeat)) is not None

    await eventually(all_there, timeout=60)
    assert await intake.service.repo.link_of(case_of(repeat)) == case_of(first)
    assert await intake.service.repo.get_case(case_of(repeat)) is None
    assert await intake.service.repo.get_case(case_of(invalid)) is None
    linked = await intake.service.repo.get_case(case_of(first))
    assert linked is not None and [d.submission_id for d in linked.duplicate_links] == [case_of(repeat)]

    async def dead() -> Any:
        records = await read_all(
            intake.settings.kafka_bootstrap,
            intake.settings.topic(topics.dlq(topics.SUBMISSIONS)),
            expect=10_000,
            timeout=2,
        )
        return [r for r in records if r.key == f"batch-{unique}".encode()]

    (record,) = await eventually(dead, timeout=30)
    assert dict(record.headers)["x-tiaojie-reason"] == b"invalid"
