"""Intake's HTTP API on the real database and Kafka: channels in, validation, idempotency,
duplicates, the citizen's tracking view, scopes and personal data."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta

import pytest

from tests.intake.conftest import CENTRE, COMMITTEE, MEDICAL, Intake, body, case_events, types_of
from tests.support.data import COUNTY, OTHER_COUNTY
from tiaojie.contracts.common import Role
from tiaojie.infra import synthetic

pytestmark = pytest.mark.integration


def metric(intake: Intake, name: str, **labels: str) -> float:
    """A value of intake's own metrics, summed over the samples matching the labels."""
    total = 0.0
    for family in vars(intake.service.metrics).values():
        for sample in family.collect()[0].samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def post(
    intake: Intake, data: dict, *, role: Role | None = Role.DESK, key: str | None = None, **kw: object
):  # type: ignore[no-untyped-def]
    headers = intake.headers(role, **kw) if role else {}  # type: ignore[arg-type]
    if key:
        headers["Idempotency-Key"] = key
    return await intake.client.post("/api/v1/disputes", json=data, headers=headers)


async def test_desk_registration_is_classified_routed_and_announced(intake: Intake, unique: str) -> None:
    before = metric(
        intake, "tiaojie_cases_received_total", county=COUNTY, channel="desk", category="neighbourhood"
    )
    data = body(unique, description="楼上邻居家卫生间漏水，把我家厨房吊顶泡坏了，让他修他不修。")
    created = await post(intake, data, key=unique)
    assert created.status_code == 201, created.text
    case = created.json()
    assert case["status"] == "received" and case["status_label"] == "已登记"
    assert case["category"] == "neighbourhood" and case["category_source"] == "classifier"
    assert case["category_label"] == "邻里" and "漏水" in case["category_evidence"]
    assert case["organisation_id"] == COMMITTEE and case["organisation"]["name"] == "兰山街道人民调解委员会"
    assert case["next_deadline"]["kind"] == "acceptance"
    events = await case_events(intake, case["id"], at_least=1)
    assert types_of(events) == ["CaseRegistered"]
    assert events[0].data["category"] == "neighbourhood" and events[0].data["organisation_id"] == COMMITTEE
    assert (
        metric(
            intake, "tiaojie_cases_received_total", county=COUNTY, channel="desk", category="neighbourhood"
        )
        == before + 1
    )


async def test_a_desk_category_overrides_the_classifier(intake: Intake, unique: str) -> None:
    data = body(unique, description="楼上邻居家漏水泡坏了吊顶。", category="property_management")
    case = (await post(intake, data)).json()
    assert case["category"] == "property_management" and case["category_source"] == "desk"
    assert case["category_suggested"] == "neighbourhood"
    changed = await intake.client.put(
        f"/api/v1/disputes/{case['id']}/category",
        json={"category": "neighbourhood"},
        headers=intake.headers(Role.DESK),
    )
    assert changed.status_code == 200 and changed.json()["category"] == "neighbourhood"


async def test_medical_disputes_go_to_the_industry_committee_and_cross_county_to_the_centre(
    intake: Intake, unique: str
) -> None:
    medical = (
        await post(intake, body(unique, description="母亲在医院做完手术后出现并发症，家属认为是医疗过错。"))
    ).json()
    assert medical["organisation_id"] == MEDICAL
    crossing = (await post(intake, body(unique + "x", related_counties=[OTHER_COUNTY]))).json()
    assert crossing["organisation_id"] == CENTRE and "跨县区" in crossing["routing_reason"]


async def test_a_retried_post_returns_the_same_case_and_a_reused_key_is_refused(
    intake: Intake, unique: str
) -> None:
    data = body(unique)
    first = await post(intake, data, key=unique)
    again = await post(intake, data, key=unique)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json()["duplicate"] is True
    other = await post(intake, body(unique + "other"), key=unique)
    assert other.status_code == 422 and other.json()["errors"][0]["code"] == "idempotency_key_reused"
    assert len(await case_events(intake, first.json()["id"], at_least=2, timeout=3)) == 1


async def test_bad_input_is_refused_per_field_in_chinese_and_english(intake: Intake, unique: str) -> None:
    before = metric(intake, "tiaojie_validation_failures_total", channel="desk", field="applicants")
    data = body(unique)
    data["applicants"][0]["id_number"] = data["applicants"][0]["id_number"][:17] + (
        "0" if data["applicants"][0]["id_number"][17] != "0" else "1"
    )
    data["township"] = "371302999"
    refused = await post(intake, data)
    assert refused.status_code == 422
    errors = {e["field"]: e for e in refused.json()["errors"]}
    assert set(errors) == {"applicants.0.id_number", "township"}
    assert errors["applicants.0.id_number"]["message_zh"] == "身份证号码校验位错误"
    assert errors["applicants.0.id_number"]["message_en"] == "ID number check digit is wrong"
    assert data["applicants"][0]["id_number"] not in refused.text
    assert (
        metric(intake, "tiaojie_validation_failures_total", channel="desk", field="applicants") == before + 1
    )


@pytest.mark.parametrize(
    ("mutate", "field", "code"),
    [
        (lambda d: d["applicants"][0].update(name={"$gt": ""}), "applicants.0.name", "string_type"),
        (lambda d: d.update({"$where": "sleep(1000)"}), "$where", "extra_forbidden"),
        (lambda d: d.update(county={"$ne": None}), "county", "string_type"),
        (lambda d: d.update(nickname="x"), "nickname", "extra_forbidden"),
        (lambda d: d.update(channel="fax"), "channel", "enum"),
        (lambda d: d.update(description="纠" * 5001), "description", "string_too_long"),
        (lambda d: d["applicants"][0].update(name="王😀"), "applicants.0.name", "name_characters"),
        (lambda d: d.update(occurred_on="2023-02-29"), "occurred_on", "date_from_datetime_parsing"),
    ],
)
async def test_tricky_inputs_never_reach_the_database(
    intake: Intake, unique: str, mutate, field: str, code: str
) -> None:  # type: ignore[no-untyped-def]
    data = body(unique)
    mutate(data)
    refused = await post(intake, data, key=unique)
    assert refused.status_code == 422, refused.text
    assert (field, code) in [(e["field"], e["code"]) for e in refused.json()["errors"]]
    again = await post(intake, body(unique), key=unique)
    assert again.status_code == 201  # the refused body stored nothing under the key


async def test_mixed_scripts_in_names_are_accepted(intake: Intake, unique: str) -> None:
    data = body(unique)
    data["applicants"][0]["name"] = "阿依古丽·买买提"
    data["respondents"][0]["name"] = "李Lily"
    created = await post(intake, data)
    assert created.status_code == 201, created.text
    shown = await intake.client.get(
        f"/api/v1/disputes/{created.json()['id']}?reveal=true", headers=intake.headers(Role.DESK)
    )
    assert [p["name"] for p in shown.json()["parties"]] == ["阿依古丽·买买提", "李Lily"]


async def test_a_body_that_is_not_json_or_too_large_is_refused(intake: Intake) -> None:
    headers = {**intake.headers(Role.DESK), "Content-Type": "application/json"}
    not_json = await intake.client.post("/api/v1/disputes", content=b"{channel: desk", headers=headers)
    assert not_json.status_code == 422 and not_json.json()["errors"][0]["code"] == "json_invalid"
    huge = json.dumps({"description": "纠" * (1024 * 1024 // 3)}).encode()
    assert len(huge) >= 1024 * 1024
    too_large = await intake.client.post("/api/v1/disputes", content=huge, headers=headers)
    assert too_large.status_code == 413 and too_large.json()["code"] == "body_too_large"


async def test_desk_users_register_only_their_counties_and_citizens_only_online(
    intake: Intake, unique: str
) -> None:
    other = await post(intake, body(unique), counties=[OTHER_COUNTY])
    assert other.status_code == 422 and other.json()["errors"][0]["code"] == "county_out_of_scope"
    citizen_desk = await post(intake, body(unique), role=None)
    assert citizen_desk.status_code == 422 and citizen_desk.json()["errors"][0]["code"] == "login_required"
    mediator = await post(intake, body(unique), role=Role.MEDIATOR)
    assert mediator.status_code == 403
    bad_token = await intake.client.post(
        "/api/v1/disputes", json=body(unique), headers={"Authorization": "Bearer x.y.z"}
    )
    assert bad_token.status_code == 401


async def test_a_citizen_applies_online_and_follows_the_case_without_seeing_anything_personal(
    intake: Intake, unique: str
) -> None:
    data = body(unique, channel="web", description="邻居在过道堆放杂物，影响通行。")
    receipt = await post(intake, data, role=None, key=unique)
    assert receipt.status_code == 201, receipt.text
    code = receipt.json()["tracking_code"]
    assert set(receipt.json()) >= {
        "tracking_code",
        "status",
        "organisation_name",
        "next_deadline",
        "message_zh",
    }
    assert "id" not in receipt.json() and "parties" not in receipt.json()
    again = await post(intake, data, role=None, key=unique)
    assert again.status_code == 200 and again.json()["tracking_code"] == code
    tracked = await intake.client.get(f"/api/v1/track/{code.lower()}")
    assert tracked.status_code == 200
    view = tracked.json()
    assert view["status_label"] == "已登记" and view["organisation_name"] == "兰山街道人民调解委员会"
    assert view["next_deadline"]["kind"] == "acceptance" and view["milestones"][0]["label"] == "申请已登记"
    text = tracked.text
    for party in data["applicants"] + data["respondents"]:
        for value in (party["name"], party["id_number"], party["phone"], party["id_number"][-4:]):
            assert value not in text
    assert data["description"] not in text


async def test_unknown_and_malformed_tracking_codes_get_the_same_404(intake: Intake) -> None:
    answers = [
        await intake.client.get(f"/api/v1/track/{code}")
        for code in ("ABCDEFGHJK", "x", "a/b", "%7B%22%24gt%22%3A%22%22%7D", "A" * 200)
    ]
    assert {a.status_code for a in answers} == {404}
    assert len({a.text for a in answers}) == 1


async def test_the_same_dispute_within_30_days_is_linked_to_the_open_case(
    intake: Intake, unique: str
) -> None:
    before = metric(intake, "tiaojie_duplicates_linked_total")
    data = body(unique, description="楼上邻居家漏水，把我家吊顶泡坏了。")
    first = (await post(intake, data, key=unique + "a")).json()
    intake.clock.advance(timedelta(days=10))
    repeat = {**data, "channel": "hotline", "description": "又来反映：楼上漏水泡坏吊顶，一直没人管。"}
    linked = await post(intake, repeat, key=unique + "b")
    assert linked.status_code == 200 and linked.json()["linked"] is True
    assert linked.json()["id"] == first["id"] and linked.json()["linked_submissions"] == 1
    retried = await post(intake, repeat, key=unique + "b")
    assert retried.json()["id"] == first["id"]
    assert metric(intake, "tiaojie_duplicates_linked_total") == before + 1
    events = await case_events(intake, first["id"], at_least=3, timeout=4)
    assert types_of(events) == ["CaseRegistered", "DuplicateLinked"]
    assert events[1].data["channel"] == "hotline"
    # Another category, or after the window, is a case of its own.
    other = await post(
        intake, {**data, "description": "楼上邻居装修噪音太大", "category": "environment"}, key=unique + "c"
    )
    assert other.status_code == 201
    intake.clock.advance(timedelta(days=21))
    later = await post(intake, data, key=unique + "d")
    assert later.status_code == 201 and later.json()["id"] != first["id"]


async def test_repeat_visits_and_threats_raise_the_risk_and_a_grave_case_alerts_at_once(
    intake: Intake, unique: str
) -> None:
    rng = random.Random(unique)
    # Working-age parties: a random birth date may make one 70 or older, a signal of its own.
    born = date(1980, 6, 1)
    applicant = {
        "name": "赵某",
        "id_number": synthetic.id_number(rng, COUNTY, born=born),
        "phone": synthetic.mobile(rng),
    }

    def other() -> dict[str, str]:
        return {"name": "钱某", "id_number": synthetic.id_number(rng, COUNTY, born=born)}

    for i, text in enumerate(["对方欠我工资不给。", "邻居堆放杂物挡路。"]):
        created = await post(
            intake, body(f"{unique}{i}", description=text, applicants=[applicant], respondents=[other()])
        )
        assert created.status_code == 201
    threat = body(
        unique + "t",
        description="他再不还钱我就拿刀砍死他，大不了同归于尽。",
        applicants=[applicant],
        respondents=[other()],
    )
    case = (await post(intake, threat)).json()
    assert case["risk_level"] == "grave" and case["risk_label"] == "重大"
    assert set(case["risk_signals"]) == {"violence_threat", "repeat_visit"}
    assert case["organisation_id"] == CENTRE
    events = await case_events(intake, case["id"], at_least=2)
    assert types_of(events) == ["CaseRegistered", "RiskRaised"]
    assert events[1].data["risk_level"] == "grave" and "violence_threat" in events[1].data["signals"]
    raw = json.dumps([e.data for e in events], ensure_ascii=False)
    assert (
        applicant["id_number"] not in raw and applicant["phone"] not in raw and applicant["name"] not in raw
    )


async def test_scopes_other_county_mediators_and_bureau(intake: Intake, unique: str) -> None:
    case = (await post(intake, body(unique))).json()
    url = f"/api/v1/disputes/{case['id']}"
    assert (await intake.client.get(url, headers=intake.headers(Role.BUREAU))).status_code == 200
    assert (
        await intake.client.get(url, headers=intake.headers(Role.BUREAU, [OTHER_COUNTY]))
    ).status_code == 404
    assert (
        await intake.client.get(url, headers=intake.headers(Role.MEDIATOR, mediator_id="med-x"))
    ).status_code == 404
    assert (await intake.client.get(url, headers=intake.headers(Role.CITIZEN))).status_code == 403
    accept = await intake.client.post(f"{url}/accept", headers=intake.headers(Role.BUREAU))
    assert accept.status_code == 403
    other = await intake.client.post(f"{url}/accept", headers=intake.headers(Role.DESK, [OTHER_COUNTY]))
    assert other.status_code == 404
    listed = await intake.client.get("/api/v1/disputes?status=received", headers=intake.headers(Role.DESK))
    assert case["id"] in [c["id"] for c in listed.json()]
    assert case["id"] not in [
        c["id"]
        for c in (
            await intake.client.get("/api/v1/disputes", headers=intake.headers(Role.DESK, [OTHER_COUNTY]))
        ).json()
    ]


async def test_personal_data_is_masked_unless_revealed_and_every_read_is_audited(
    intake: Intake, unique: str
) -> None:
    data = body(unique)
    case = (await post(intake, data)).json()
    url = f"/api/v1/disputes/{case['id']}"
    masked = await intake.client.get(url, headers=intake.headers(Role.BUREAU))
    id_number = data["applicants"][0]["id_number"]
    assert id_number not in masked.text and data["applicants"][0]["phone"] not in masked.text
    assert masked.json()["parties"][0]["id_number"] == id_number[:4] + "*" * 10 + id_number[-4:]
    bureau_reveal = await intake.client.get(url + "?reveal=true", headers=intake.headers(Role.BUREAU))
    assert id_number not in bureau_reveal.text
    desk_reveal = await intake.client.get(url + "?reveal=true", headers=intake.headers(Role.DESK))
    assert desk_reveal.json()["parties"][0]["id_number"] == id_number
    stored = await intake.service.repo.get_case_raw(case["id"])
    assert stored is not None and id_number not in json.dumps(stored, default=str, ensure_ascii=False)
    audit = await intake.service.repo.audit_of(case["id"])
    assert [a["action"] for a in audit] == ["read", "read", "reveal"]


async def test_staff_registrations_are_not_counted_against_the_citizen_limit(intake: Intake) -> None:
    limit = int(intake.settings.citizen_submission_limit.split("/")[0])
    async with intake.client_from("198.51.100.50") as office:
        for n in range(limit + 1):
            answer = await office.post(
                "/api/v1/disputes", json=body(f"staff-limit-{n}"), headers=intake.headers(Role.DESK)
            )
            assert answer.status_code == 201, answer.text


async def test_lists_are_cut_in_the_database_and_bounded(intake: Intake, unique: str) -> None:
    from tiaojie.intake.repository import MAX_PAGE, Scope

    for n in range(3):
        intake.clock.advance(timedelta(seconds=1))
        assert (await post(intake, body(f"{unique}{n}"))).status_code == 201
    scope = Scope(counties=frozenset({COUNTY}))
    newest = await intake.service.repo.list_cases(scope, limit=2)
    assert len(newest) == 2 and newest[0].received_at >= newest[1].received_at
    following = await intake.service.repo.list_cases(scope, limit=2, skip=1)
    assert following[0].id == newest[1].id
    assert len(await intake.service.repo.list_cases(scope, limit=10 * MAX_PAGE)) <= MAX_PAGE
    too_many = await intake.client.get(
        "/api/v1/disputes", params={"limit": MAX_PAGE + 1}, headers=intake.headers(Role.DESK)
    )
    assert too_many.status_code == 422
