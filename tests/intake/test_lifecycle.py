"""The case lifecycle over HTTP and Kafka on the real servers: acceptance with a
pre-assignment, the mediator's actions, the file, clocks, illegal transitions, and one
event per transition even when requests are retried."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.intake.conftest import COMMITTEE, Intake, body, case_events, types_of
from tests.support.kafka import eventually, produce, read_all
from tiaojie.contracts import topics
from tiaojie.contracts.common import Category, Role
from tiaojie.contracts.envelope import decode_event, new_event
from tiaojie.contracts.intake import CaseNominated, NominatedContent
from tiaojie.contracts.registry import AssignmentFailed, MediatorAssigned

pytestmark = pytest.mark.integration

DESK = Role.DESK


async def register(intake: Intake, seed: str, **overrides: Any) -> dict[str, Any]:
    data = body(seed, description="邻居在过道堆放杂物，影响通行，多次沟通无果。", **overrides)
    created = await intake.client.post("/api/v1/disputes", json=data, headers=intake.headers(DESK))
    assert created.status_code == 201, created.text
    return created.json()


async def assign_via_kafka(
    intake: Intake,
    case_id: str,
    mediator_id: str,
    *,
    organisation_id: str = COMMITTEE,
    at: datetime | None = None,
) -> None:
    decision = MediatorAssigned(
        case_id=case_id,
        county="371302",
        organisation_id=organisation_id,
        mediator_id=mediator_id,
        mediator_name="调解员甲",
        score=1.0,
        reason="lowest load",
        assigned_at=at or intake.clock.now(),
    )
    event = new_event(decision, source="/tiaojie/registry", subject=case_id, county="371302")
    await produce(
        intake.settings.kafka_bootstrap,
        intake.settings.topic(topics.ASSIGNMENTS),
        [event.to_bytes()],
        key=case_id.encode(),
    )


async def act(
    intake: Intake,
    case_id: str,
    path: str,
    json: dict[str, Any] | None = None,
    *,
    role: Role = Role.MEDIATOR,
    key: str | None = None,
    **claims: Any,
):  # type: ignore[no-untyped-def]
    headers = intake.headers(role, **claims)
    if key:
        headers["Idempotency-Key"] = key
    return await intake.client.post(f"/api/v1/disputes/{case_id}/{path}", json=json, headers=headers)


async def test_from_registration_to_the_archive(intake: Intake, unique: str) -> None:
    case = await register(intake, unique)
    cid = case["id"]
    mediator = f"med-{unique}"
    # The registry's decision arrives before acceptance: kept as a pre-assignment.
    await assign_via_kafka(intake, cid, mediator)

    async def pre_assigned() -> bool:
        got = await intake.service.repo.get_case(cid)
        return got is not None and got.assignment is not None

    await eventually(pre_assigned)
    held = (await intake.client.get(f"/api/v1/disputes/{cid}", headers=intake.headers(DESK))).json()
    assert held["status"] == "received" and held["assignment"]["mediator_id"] == mediator

    accepted = await act(intake, cid, "accept", role=DESK, key="accept-1")
    assert accepted.status_code == 200, accepted.text
    view = accepted.json()
    assert view["status"] == "assigned" and view["case_number"].startswith("(2026)临兰街人调字第")
    assert view["mediation_due"] == (
        datetime.fromisoformat(view["accepted_at"]) + timedelta(days=30)
    ).isoformat().replace("+00:00", "Z")
    replay = await act(intake, cid, "accept", role=DESK, key="accept-1")
    assert replay.status_code == 200 and replay.json()["case_number"] == view["case_number"]

    me = {"mediator_id": mediator}
    other = await act(
        intake,
        cid,
        "sessions",
        {"held_at": intake.clock.now().isoformat(), "place": "x"},
        mediator_id="med-someone-else",
    )
    assert other.status_code == 404
    early = await act(intake, cid, "resolve", {"form": "oral"}, **me)
    assert early.status_code == 409 and early.json()["current_state"] == "assigned"
    assert early.json()["message_zh"] == "当前状态为“已指派”，不能调解成功结案"

    intake.clock.advance(timedelta(days=2))
    session = {
        "held_at": intake.clock.now().isoformat(),
        "place": "兰山街道调解室",
        "participants": ["申请人", "被申请人", "调解员"],
        "record": "双方陈述",
    }
    first = await act(intake, cid, "sessions", session, key="s1", **me)
    assert first.status_code == 200 and first.json()["status"] == "in_mediation"
    assert (await act(intake, cid, "sessions", session, key="s1", **me)).json()["sessions"].__len__() == 1
    second = await act(intake, cid, "sessions", session, key="s2", **me)
    assert len(second.json()["sessions"]) == 2
    due = (intake.clock.now() + timedelta(days=20)).date().isoformat()
    resolved = await act(
        intake,
        cid,
        "resolve",
        {
            "form": "written",
            "amount": 3000,
            "performance_due": due,
            "summary": "被申请人于13812345678处清理杂物",
            "text": "协议全文……",
            "judicial_confirmation": True,
        },
        **me,
    )
    assert resolved.status_code == 200, resolved.text
    agreement = resolved.json()["agreement"]
    assert agreement["form_label"] == "书面协议" and "13812345678" not in agreement["summary"]
    assert resolved.json()["next_deadline"]["kind"] == "performance"
    assert (
        await act(intake, cid, "performance", {"performed_on": intake.clock.now().date().isoformat()}, **me)
    ).status_code == 200
    assert (
        await act(
            intake,
            cid,
            "follow-up",
            {"visited_on": intake.clock.now().date().isoformat(), "method": "phone", "satisfied": True},
            **me,
        )
    ).status_code == 200

    incomplete = await act(intake, cid, "archive", **me)
    assert incomplete.status_code == 409
    assert incomplete.json()["missing_parts"] == ["notice_of_rights", "identity_documents"]
    index = (
        await intake.client.get(f"/api/v1/disputes/{cid}/file", headers=intake.headers(Role.MEDIATOR, **me))
    ).json()
    assert [p["code"] for p in index["parts"] if p["missing"]] == ["notice_of_rights", "identity_documents"]
    assert len(index["parts"]) == 13 and not index["complete"]
    for part in ("notice_of_rights", "identity_documents"):
        added = await act(
            intake,
            cid,
            "documents",
            {"part": part, "title": part, "uri": f"https://files.example.org/{cid}/{part}.pdf"},
            **me,
        )
        assert added.status_code == 200, added.text
    archived = await act(intake, cid, "archive", **me)
    assert archived.status_code == 200 and archived.json()["status"] == "archived"
    final = (await intake.client.get(f"/api/v1/disputes/{cid}/file", headers=intake.headers(DESK))).json()
    assert final["complete"] and next(p for p in final["parts"] if p["code"] == "back_cover")["present"]
    assert (await act(intake, cid, "withdraw", role=DESK)).status_code == 409

    expected = [
        "CaseRegistered",
        "CaseAccepted",
        "CaseAssignmentRecorded",
        "SessionRecorded",
        "SessionRecorded",
        "CaseResolved",
        "AgreementPerformed",
        "FollowUpRecorded",
        "CaseArchived",
    ]
    events = await case_events(intake, cid, at_least=len(expected) + 1, timeout=6)
    assert types_of(events) == expected
    statuses = [e.data.get("status") for e in events[1:]]
    assert statuses == [
        "accepted",
        "assigned",
        "in_mediation",
        "in_mediation",
        "resolved",
        "resolved",
        "followed_up",
        "archived",
    ]
    assert events[1].data["case_number"] == view["case_number"]
    assert (
        events[5].data["judicial_confirmation_due"] is not None
        and events[5].data["agreement_form"] == "written"
    )
    assert all(e.data["organisation_id"] == COMMITTEE for e in events[1:])
    history = [h["action"] for h in archived.json()["history"]]
    assert history[:4] == ["register", "assign", "accept", "assign"]


async def test_assignment_after_acceptance_and_reassignment(intake: Intake, unique: str) -> None:
    cid = (await register(intake, unique))["id"]
    assert (await act(intake, cid, "accept", role=DESK)).json()["status"] == "accepted"
    await assign_via_kafka(intake, cid, "med-a")

    await eventually(lambda: _is(intake, cid, mediator="med-a", status="assigned"))
    await assign_via_kafka(intake, cid, "med-b", at=intake.clock.now() + timedelta(minutes=5))
    await eventually(lambda: _is(intake, cid, mediator="med-b", status="assigned"))
    # A stale decision arriving late changes nothing.
    await assign_via_kafka(intake, cid, "med-a", at=intake.clock.now() - timedelta(minutes=5))
    events = await case_events(intake, cid, at_least=5, timeout=6)
    assert types_of(events) == [
        "CaseRegistered",
        "CaseAccepted",
        "CaseAssignmentRecorded",
        "CaseAssignmentRecorded",
    ]
    assert [e.data["mediator_id"] for e in events[2:]] == ["med-a", "med-b"]


async def _is(intake: Intake, cid: str, *, mediator: str, status: str) -> bool:
    got = await intake.service.repo.get_case(cid)
    return got is not None and got.mediator_id == mediator and got.status == status


async def test_assignment_failure_is_shown_on_the_case(intake: Intake, unique: str) -> None:
    cid = (await register(intake, unique))["id"]
    failed = AssignmentFailed(
        case_id=cid,
        county="371302",
        organisation_id=COMMITTEE,
        tried=[COMMITTEE],
        reason="nobody eligible",
        failed_at=intake.clock.now(),
    )
    event = new_event(failed, source="/tiaojie/registry", subject=cid, county="371302")
    await produce(
        intake.settings.kafka_bootstrap,
        intake.settings.topic(topics.ASSIGNMENTS),
        [event.to_bytes()],
        key=cid.encode(),
    )

    async def shown() -> dict[str, Any] | None:
        got = (await intake.client.get(f"/api/v1/disputes/{cid}", headers=intake.headers(Role.CENTER))).json()
        return got["assignment_failure"]

    failure = await eventually(shown)
    assert failure["reason"] == "nobody eligible" and failure["tried"] == [COMMITTEE]


async def test_rejection_uses_the_fixed_list_of_reasons(intake: Intake, unique: str) -> None:
    cid = (await register(intake, unique))["id"]
    unknown = await act(intake, cid, "reject", {"reason_code": "do_not_like"}, role=DESK)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "reason_code"
    rejected = await act(
        intake,
        cid,
        "reject",
        {"reason_code": "in_litigation", "reason_text": "已向兰山区法院起诉"},
        role=DESK,
    )
    assert rejected.status_code == 200 and rejected.json()["status_label"] == "不予受理"
    assert (await act(intake, cid, "accept", role=DESK)).status_code == 409
    events = await case_events(intake, cid, at_least=2)
    assert (
        types_of(events) == ["CaseRegistered", "CaseRejected"]
        and events[1].data["reason_code"] == "in_litigation"
    )


async def test_failure_withdrawal_and_the_guided_route(intake: Intake, unique: str) -> None:
    failing = (await register(intake, unique))["id"]
    withdrawing = (await register(intake, unique + "w"))["id"]
    for cid in (failing, withdrawing):
        await act(intake, cid, "accept", role=DESK)
        await assign_via_kafka(intake, cid, f"med-{unique}")
        await eventually(lambda cid=cid: _is(intake, cid, mediator=f"med-{unique}", status="assigned"))
        session = {"held_at": intake.clock.now().isoformat(), "place": "调解室"}
        assert (await act(intake, cid, "sessions", session, role=Role.CENTER)).status_code == 200
    bad_route = await act(intake, failing, "fail", {"route": "duel"}, role=Role.CENTER)
    assert bad_route.status_code == 422
    failed = await act(
        intake, failing, "fail", {"route": "litigation", "reason": "双方分歧过大"}, role=Role.CENTER
    )
    assert failed.json()["status"] == "failed" and failed.json()["failure"]["route"] == "litigation"
    withdrawn = await act(intake, withdrawing, "withdraw", {"reason": "双方已自行和解"}, role=DESK)
    assert withdrawn.json()["status"] == "withdrawn"
    events = await case_events(intake, withdrawing, at_least=5)
    assert events[-1].data["previous_status"] == "in_mediation" and types_of(events)[-1] == "CaseWithdrawn"
    assert types_of(await case_events(intake, failing, at_least=5))[-1] == "CaseFailed"


async def test_the_mediation_clock_pauses_resumes_and_extends_once_by_consent(
    intake: Intake, unique: str
) -> None:
    cid = (await register(intake, unique))["id"]
    assert (
        await act(intake, cid, "clock/pause", {"reason": "等待伤情鉴定"}, role=Role.CENTER)
    ).status_code == 409
    accepted = (await act(intake, cid, "accept", role=DESK)).json()
    due = datetime.fromisoformat(accepted["mediation_due"])
    paused = await act(intake, cid, "clock/pause", {"reason": "等待伤情鉴定"}, role=Role.CENTER)
    assert paused.json()["next_deadline"]["paused"] is True
    assert (await act(intake, cid, "clock/pause", {"reason": "again"}, role=Role.CENTER)).status_code == 409
    intake.clock.advance(timedelta(days=5))
    resumed = (await act(intake, cid, "clock/resume", role=Role.CENTER)).json()
    assert datetime.fromisoformat(resumed["mediation_due"]) == due + timedelta(days=5)
    no_consent = await act(
        intake,
        cid,
        "clock/extend",
        {"days": 15, "applicant_consent": True, "respondent_consent": False, "consent_record": "电话征询"},
        role=Role.CENTER,
    )
    assert no_consent.status_code == 422 and no_consent.json()["errors"][0]["field"] == "respondent_consent"
    consent = {
        "days": 15,
        "applicant_consent": True,
        "respondent_consent": True,
        "consent_record": "双方在调解笔录上签字同意延长",
    }
    extended = (await act(intake, cid, "clock/extend", consent, role=Role.CENTER)).json()
    assert datetime.fromisoformat(extended["mediation_due"]) == due + timedelta(days=20)
    again = await act(intake, cid, "clock/extend", consent, role=Role.CENTER)
    assert again.status_code == 409
    events = await case_events(intake, cid, at_least=5)
    changes = [(e.data["change"], e.data["due"]) for e in events if e.type.endswith("DeadlineChanged")]
    assert [c for c, _ in changes] == ["paused", "resumed", "extended"]
    assert changes[0][1] is None and datetime.fromisoformat(changes[2][1]) == due + timedelta(days=20)


async def test_a_bureau_user_reads_but_cannot_act(intake: Intake, unique: str) -> None:
    cid = (await register(intake, unique))["id"]
    assert (await act(intake, cid, "accept", role=Role.BUREAU)).status_code == 403
    assert (await act(intake, cid, "withdraw", role=Role.BUREAU)).status_code == 403
    assert (
        await intake.client.get(f"/api/v1/disputes/{cid}/file", headers=intake.headers(Role.BUREAU))
    ).status_code == 200


async def test_case_numbers_follow_the_local_year(intake: Intake, unique: str) -> None:
    saved = intake.clock.now()
    try:
        intake.clock.set(datetime(2026, 12, 31, 17, 30, tzinfo=UTC))  # 2027-01-01 01:30 in Linyi
        cid = (await register(intake, unique))["id"]
        number = (await act(intake, cid, "accept", role=DESK)).json()["case_number"]
        assert number.startswith("(2027)临兰街人调字第")
    finally:
        intake.clock.set(saved)


async def test_concurrent_actions_on_one_case_are_all_kept(intake: Intake, unique: str) -> None:
    """FerretDB loses concurrent updates of one document; the revision log must not."""
    cid = (await register(intake, unique))["id"]
    added = await asyncio.gather(
        *(
            intake.service.add_document(
                case_id=cid,
                by="desk",
                action_id=f"doc-{unique}-{i}",
                scope=None,
                part="evidence",
                title=f"证据{i}",
                uri=f"/evidence/{i}.jpg",
                media_type=None,
                sha256=None,
                pages=None,
            )
            for i in range(12)
        )
    )
    assert len(added) == 12
    case = await intake.service.repo.get_case(cid)
    assert case is not None
    assert sorted(d.title for d in case.documents) == sorted(f"证据{i}" for i in range(12))
    assert case.version == 13 and len(case.history) == 13


async def test_an_archived_case_is_nominated_for_the_library_once(intake: Intake, unique: str) -> None:
    cid = (await register(intake, unique))["id"]
    assert (await act(intake, cid, "nominations", {"note": "x"}, role=Role.CENTER)).status_code == 409
    await act(intake, cid, "accept", role=DESK)
    await assign_via_kafka(intake, cid, f"med-{unique}")
    await eventually(lambda: _is(intake, cid, mediator=f"med-{unique}", status="assigned"))
    session = {
        "held_at": intake.clock.now().isoformat(),
        "place": "调解室",
        "participants": ["申请人", "被申请人"],
        "record": "调解笔录全文",
    }
    for path, payload in [
        ("sessions", session),
        ("fail", {"route": "litigation", "reason": "对赔偿数额分歧大"}),
        (
            "follow-up",
            {"visited_on": intake.clock.now().date().isoformat(), "method": "phone", "record": "已起诉"},
        ),
        ("documents", {"part": "notice_of_rights", "title": "告知书", "uri": "/f/1.pdf"}),
        ("documents", {"part": "identity_documents", "title": "身份证明", "uri": "/f/2.pdf"}),
        ("archive", None),
    ]:
        done = await act(intake, cid, path, payload, role=Role.CENTER)
        assert done.status_code == 200, f"{path}: {done.text}"
    nominated = await act(intake, cid, "nominations", {"note": "释法说理典型"}, role=Role.CENTER, key="n1")
    assert nominated.status_code == 202 and nominated.json()["nominated"] is True
    assert (
        await act(intake, cid, "nominations", {"note": "释法说理典型"}, role=Role.CENTER, key="n1")
    ).status_code == 202
    assert (await act(intake, cid, "nominations", {"note": "again"}, role=Role.CENTER)).status_code == 409
    records = await read_all(
        intake.settings.kafka_bootstrap,
        intake.settings.topic(topics.LIBRARY_NOMINATIONS),
        expect=10_000,
        timeout=4,
    )
    mine = {decode_event(r.value).id: decode_event(r.value) for r in records if r.key == cid.encode()}
    assert len(mine) == 1
    (event,) = mine.values()
    data = CaseNominated.model_validate(event.data)
    assert data.outcome == "failed" and data.note == "释法说理典型" and data.case_number
    content = NominatedContent.model_validate_json(intake.service.protector.decrypt(data.content_enc))
    assert content.sessions[0].record == "调解笔录全文" and content.failure_reason == "对赔偿数额分歧大"
    assert {p["role"] for p in content.parties} == {"applicant", "respondent"}
    assert "调解笔录全文" not in event.to_bytes().decode()


async def test_each_change_is_a_settled_revision_and_only_the_head_keeps_its_state(
    intake: Intake, unique: str
) -> None:
    case = await register(intake, f"settle-{unique}")
    await intake.service.set_category(
        case_id=case["id"], by="desk", action_id=f"cat-{unique}", scope=None, category=Category.NEIGHBOURHOOD
    )
    store = intake.service.repo.store
    first, second = await store.log.find({"of": case["id"]}).sort("_id", 1).to_list()
    # Published and applied: no pending events, nothing for the reconciler; the earlier
    # revision gave up its snapshot to the head.
    assert first["applied"] is True and second["applied"] is True
    assert "state" not in first and second["state"]["version"] == 2
    assert "outbox" not in first and first["outbox_pending"] is False
    assert case["id"] not in {r["of"] for r in await store.unsettled(older_than=timedelta(0))}
