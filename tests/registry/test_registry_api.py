"""The registry's HTTP API against the real servers: filing with versions and history,
re-filing without effect, personal data protected, county scoping, status, training and
discipline, eligibility computed on the day, metrics."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest

from tests.registry.conftest import RegistryHarness
from tests.support.kafka import read_all
from tiaojie.contracts import topics
from tiaojie.contracts.common import Role
from tiaojie.contracts.envelope import decode_event
from tiaojie.infra import synthetic
from tiaojie.infra.demo import demo_registry
from tiaojie.runtime.divisions import Divisions

pytestmark = pytest.mark.integration

DEMO_COUNTY = "371321"  # 沂南县


@pytest.fixture(scope="module")
def demo(divisions_dir: Path) -> tuple[list[dict], list[dict]]:
    """The Linyi demo's city centre and one county, exactly as the loader posts them."""
    orgs, mediators = demo_registry(Divisions.load(divisions_dir))
    mine = [o for o in orgs if o["level"] == "city" or o["county"] == DEMO_COUNTY]
    return mine, [m for m in mediators if m["county"] == DEMO_COUNTY]


async def post_all(registry: RegistryHarness, path: str, bodies: list[dict]) -> list[int]:
    # An administrator acts in its token's counties: the city centre is filed under 兰山区.
    headers = registry.headers(Role.ADMIN, [DEMO_COUNTY, "371302"])
    return [(await registry.http.post(path, json=b, headers=headers)).status_code for b in bodies]


async def test_the_demo_loads_and_loading_it_again_changes_and_publishes_nothing(
    registry: RegistryHarness, demo: tuple[list[dict], list[dict]]
) -> None:
    orgs, mediators = demo
    levels = [
        [o for o in orgs if o["level"] == "city"],
        [o for o in orgs if o["kind"] == "centre" and o["level"] == "county"],
        [o for o in orgs if o["kind"] != "centre"],
    ]
    for level in levels:
        assert set(await post_all(registry, "/api/v1/organisations", level)) == {201}
    assert set(await post_all(registry, "/api/v1/mediators", mediators)) == {201}
    for level in levels:
        assert set(await post_all(registry, "/api/v1/organisations", level)) == {200}
    assert set(await post_all(registry, "/api/v1/mediators", mediators)) == {200}
    stored = await registry.service.repo.mediators_in(DEMO_COUNTY)
    assert len(stored) == len(mediators) and {m.version for m in stored} == {1}
    settings = registry.settings
    published = await read_all(
        settings.kafka_bootstrap, settings.topic(topics.MEDIATORS), expect=10**6, timeout=3
    )
    ours = [r for r in published if r.key and r.key.decode() in {m["id"] for m in mediators}]
    # One event per mediator although filed twice (the outbox relay may publish an event
    # more than once: at least once, always with the same id).
    events = {decode_event(r.value).id: decode_event(r.value) for r in ours}
    assert len(events) == len(mediators) and {e.data["version"] for e in events.values()} == {1}
    for record in ours:
        assert b"id_number" not in record.value
        assert not any(m["id_number"].encode() in record.value for m in mediators)


async def test_a_change_bumps_the_version_and_is_recorded_with_who_and_what(
    registry: RegistryHarness,
) -> None:
    admin = registry.headers(Role.BUREAU, ["371302"], name="张科长")
    body = {
        "id": "org-hist",
        "name": "历史测试调解中心",
        "short_name": "历",
        "kind": "centre",
        "level": "county",
        "county": "371302",
        "division_code": "371302",
    }
    assert (await registry.http.post("/api/v1/organisations", json=body, headers=admin)).status_code == 201
    changed = await registry.http.post(
        "/api/v1/organisations", json={**body, "short_name": "史", "hours": "周一至周五"}, headers=admin
    )
    assert changed.status_code == 200 and changed.json()["version"] == 2
    history = (await registry.http.get("/api/v1/organisations/org-hist/history", headers=admin)).json()
    assert [h["version"] for h in history] == [2, 1]
    assert history[0]["by"] == "test-bureau" and history[0]["action"] == "file"
    assert history[0]["changes"] == {
        "short_name": {"from": "历", "to": "史"},
        "hours": {"from": None, "to": "周一至周五"},
    }
    shown = (await registry.http.get("/api/v1/organisations/org-hist", headers=admin)).json()
    assert shown["id"] == "org-hist" and shown["members"] is None  # a centre is not a committee


async def test_personal_data_is_masked_and_history_holds_no_values(registry: RegistryHarness) -> None:
    rng = random.Random(11)
    number, phone = synthetic.id_number(rng, "371302"), synthetic.mobile(rng)
    admin = registry.headers(Role.BUREAU, ["371302"])
    await registry.http.post(
        "/api/v1/organisations",
        json={
            "id": "org-pii",
            "name": "隐私测试调委会",
            "short_name": "隐",
            "kind": "township_committee",
            "level": "township",
            "county": "371302",
            "division_code": "371302002",
        },
        headers=admin,
    )
    body = {
        "id": "med-pii",
        "name": "赵调解",
        "id_number": number,
        "phone": phone,
        "county": "371302",
        "organisation_ids": ["org-pii"],
        "grade": "4",
        "certificate_number": "P1",
        "certificate_expires_on": "2028-01-01",
        "relations": [{"relation": "配偶", "id_number": synthetic.id_number(rng, "371302")}],
    }
    created = await registry.http.post("/api/v1/mediators", json=body, headers=admin)
    assert created.status_code == 201, created.text
    out = created.json()
    assert out["id_number_masked"] == number[:4] + "*" * 10 + number[-4:]
    assert out["phone_masked"] == phone[:3] + "****" + phone[-4:] and out["relations"] == 1
    assert number not in created.text and phone not in created.text
    other = synthetic.id_number(rng, "371302")
    await registry.http.post("/api/v1/mediators", json={**body, "id_number": other}, headers=admin)
    history = (await registry.http.get("/api/v1/mediators/med-pii/history", headers=admin)).json()
    assert history[0]["changes"] == {"id_number_key": {"changed": True}}
    raw = await registry.service.repo.mediator_store.get("med-pii")
    assert raw is not None and number not in str(raw) and other not in str(raw) and phone not in str(raw)
    taken = await registry.http.post(
        "/api/v1/mediators", json={**body, "id": "med-pii-2", "id_number": other}, headers=admin
    )
    assert taken.status_code == 409 and taken.json()["message_en"].startswith("this ID number")


async def test_another_countys_records_are_not_found(registry: RegistryHarness) -> None:
    own = registry.headers(Role.BUREAU, ["371302"])
    await registry.http.post(
        "/api/v1/organisations",
        json={
            "id": "org-scope",
            "name": "范围测试中心",
            "short_name": "范",
            "kind": "centre",
            "level": "county",
            "county": "371302",
            "division_code": "371302",
        },
        headers=own,
    )
    stranger = registry.headers(Role.BUREAU, ["371311"])
    assert (await registry.http.get("/api/v1/organisations/org-scope", headers=stranger)).status_code == 404
    assert (await registry.http.get("/api/v1/organisations/org-missing", headers=own)).status_code == 404
    assert (
        await registry.http.get("/api/v1/organisations", params={"county": "371302"}, headers=stranger)
    ).json() == []
    filed = await registry.http.post(
        "/api/v1/organisations",
        json={
            "name": "越权中心",
            "short_name": "越",
            "kind": "centre",
            "level": "county",
            "county": "371302",
            "division_code": "371302",
        },
        headers=stranger,
    )
    assert filed.status_code == 422 and filed.json()["errors"][0]["code"] == "county_out_of_scope"
    desk = registry.headers(Role.DESK, ["371302"])
    assert (
        await registry.http.post("/api/v1/organisations", json={"name": "x"}, headers=desk)
    ).status_code == 403


async def test_bad_filings_get_reasons_per_field_in_both_languages(registry: RegistryHarness) -> None:
    response = await registry.http.post(
        "/api/v1/organisations",
        json={
            "name": "错误委员会",
            "short_name": "错",
            "kind": "township_committee",
            "level": "township",
            "county": "371302",
            "division_code": "371311001",
            "parent_id": "org-nowhere",
        },
        headers=registry.headers(Role.BUREAU, ["371302"]),
    )
    assert response.status_code == 422
    errors = {e["field"]: e for e in response.json()["errors"]}
    assert errors["division_code"]["code"] == "division_outside_county"
    assert errors["parent_id"]["code"] == "unknown_parent"
    assert all(e["message_zh"] and e["message_en"] for e in errors.values())


async def test_status_training_discipline_and_eligibility_on_the_day(registry: RegistryHarness) -> None:
    admin = registry.headers(Role.BUREAU, ["371302"])
    await registry.http.post(
        "/api/v1/organisations",
        json={
            "id": "org-life",
            "name": "履历测试调委会",
            "short_name": "履",
            "kind": "township_committee",
            "level": "township",
            "county": "371302",
            "division_code": "371302003",
        },
        headers=admin,
    )
    body = {
        "id": "med-life",
        "name": "钱调解",
        "county": "371302",
        "organisation_ids": ["org-life"],
        "grade": "3",
        "certificate_number": "L1",
        "certificate_expires_on": "2026-06-30",
        "full_time": True,
    }
    assert (await registry.http.post("/api/v1/mediators", json=body, headers=admin)).json()[
        "eligible"
    ] is True
    url = "/api/v1/mediators/med-life"
    trained = await registry.http.post(
        f"{url}/training", json={"course": "人民调解实务", "hours": 16, "on": "2026-02-20"}, headers=admin
    )
    assert trained.status_code == 201 and trained.json()["training_hours_this_year"] == 16
    suspended = await registry.http.post(
        f"{url}/status", json={"status": "suspended", "reason": "待调查"}, headers=admin
    )
    assert suspended.json()["eligible"] is False and suspended.json()["status_reason"] == "待调查"
    # Filing the roster again must not reinstate a suspended mediator.
    assert (await registry.http.post("/api/v1/mediators", json=body, headers=admin)).json()[
        "status"
    ] == "suspended"
    await registry.http.post(f"{url}/status", json={"status": "active", "reason": "调查结束"}, headers=admin)
    disciplined = await registry.http.post(
        f"{url}/discipline",
        json={
            "prohibition": "privacy_leak",
            "sanction": "suspension",
            "starts_on": "2026-03-01",
            "ends_on": "2026-03-31",
        },
        headers=admin,
    )
    assert disciplined.status_code == 201
    assert (
        disciplined.json()["effective_status"] == "suspended"
        and disciplined.json()["suspended_until"] == "2026-03-31"
    )
    no_period = await registry.http.post(
        f"{url}/discipline",
        json={"prohibition": "gifts", "sanction": "suspension", "starts_on": "2026-03-01"},
        headers=admin,
    )
    assert no_period.status_code == 422 and no_period.json()["errors"][0]["field"] == "ends_on"
    registry.clock.advance(timedelta(days=40))  # 2026-04-11: suspension served
    try:
        shown = (await registry.http.get(url, headers=admin)).json()
        assert shown["eligible"] is True and shown["effective_status"] == "active"
        registry.clock.advance(timedelta(days=90))  # 2026-07-10: certificate expired
        shown = (await registry.http.get(url, headers=admin)).json()
        assert shown["eligible"] is False
        assert [r["code"] for r in shown["ineligible_reasons"]] == ["certificate_expired"]
    finally:
        registry.clock.set(registry.clock.now() - timedelta(days=130))
    history = (await registry.http.get(f"{url}/history", headers=admin)).json()
    assert [h["action"] for h in history][:4] == [
        "discipline",
        "status:active",
        "status:suspended",
        "training",
    ]


async def test_mediator_gauge_counts_effective_status(registry: RegistryHarness) -> None:
    await registry.service.refresh_gauges(["371302"])
    text = (await registry.http.get("/metrics")).text
    lines = [
        line
        for line in text.splitlines()
        if line.startswith("tiaojie_mediators{") and 'county="371302"' in line
    ]
    assert lines and all('grade="' in line and 'status="' in line for line in lines)
    assert any('status="active"' in line and not line.endswith(" 0.0") for line in lines)
