"""The registry as a user of another county, or of another organisation, would attack it:
moving another county's mediator or organisation by naming its id (over the API and in an
import file), linking another county's organisation to one's own mediator, an
organisation-scoped token editing another organisation's mediator, and every route of the
registry's route table called with a token of another county (404 or 403, nothing
changed). A route added without such a check fails the generated test until it is listed
with its request below."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import APIRoute

from tests.registry.conftest import RegistryHarness
from tests.registry.conftest import registry as registry
from tiaojie.contracts.common import Category, Role
from tiaojie.contracts.envelope import new_event
from tiaojie.contracts.intake import CaseRegistered
from tiaojie.infra import synthetic

pytestmark = pytest.mark.integration

LANSHAN, LUOZHUANG = "371302", "371311"  # 兰山区, 罗庄区
CENTRE, TC, TC2 = "sc-302-centre", "sc-302-tc", "sc-302-tc2"
OTHER_CENTRE = "sc-311-centre"
M1, M2, OTHER_M = "sc-302-m1", "sc-302-m2", "sc-311-m1"
CASE = "sc-case-1"
MEDIATOR_CSV = "调解员编号,姓名,身份证号码,所属县区代码,所属调解组织\n"
ORGANISATION_CSV = "组织编码,组织名称,简称,组织类型,层级,所属县区代码,行政区划代码\n"


def organisation(org_id: str, county: str, division: str, **fields: Any) -> dict[str, Any]:
    kind = "centre" if division == county else "township_committee"
    level = "county" if division == county else "township"
    return {
        "id": org_id,
        "name": f"{org_id}调解组织",
        "short_name": org_id[-4:],
        "kind": kind,
        "level": level,
        "county": county,
        "division_code": division,
        **fields,
    }


def mediator(mediator_id: str, county: str, org: str, number: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": mediator_id,
        "name": "调解员" + mediator_id[-2:],
        "id_number": number,
        "county": county,
        "organisation_ids": [org],
        "full_time": True,
        "grade": "3",
        "certificate_number": "C" + mediator_id,
        "certificate_expires_on": "2030-12-31",
        **fields,
    }


@dataclass
class Roster:
    numbers: dict[str, str]  # mediator id -> ID number


@pytest.fixture(scope="module")
async def roster(registry: RegistryHarness) -> Roster:
    """Two counties: 兰山 with a centre and two committees under it, 罗庄 with a centre;
    a mediator in each committee and one in 罗庄; a case of 兰山 assigned in the first committee."""
    import random

    rng = random.Random(15)
    admin = registry.headers(Role.ADMIN, [LANSHAN, LUOZHUANG])
    for body in (
        organisation(CENTRE, LANSHAN, LANSHAN),
        organisation(TC, LANSHAN, "371302001", parent_id=CENTRE),
        organisation(TC2, LANSHAN, "371302002", parent_id=CENTRE),
        organisation(OTHER_CENTRE, LUOZHUANG, LUOZHUANG),
    ):
        response = await registry.http.post("/api/v1/organisations", json=body, headers=admin)
        assert response.status_code == 201, response.text
    numbers = {
        M1: synthetic.id_number(rng, LANSHAN),
        M2: synthetic.id_number(rng, LANSHAN),
        OTHER_M: synthetic.id_number(rng, LUOZHUANG),
        "sc-302-m3": synthetic.id_number(rng, LANSHAN),
    }
    for body in (
        mediator(M1, LANSHAN, TC, numbers[M1]),
        mediator("sc-302-m3", LANSHAN, TC, numbers["sc-302-m3"]),
        mediator(M2, LANSHAN, TC2, numbers[M2]),
        mediator(OTHER_M, LUOZHUANG, OTHER_CENTRE, numbers[OTHER_M]),
    ):
        response = await registry.http.post("/api/v1/mediators", json=body, headers=admin)
        assert response.status_code == 201, response.text
    data = CaseRegistered(
        case_id=CASE,
        channel="desk",
        county=LANSHAN,
        township="371302001",
        category=Category.NEIGHBOURHOOD,
        organisation_id=TC,
        received_at=registry.clock.now(),
    )
    event = new_event(data, source="/tiaojie/intake", subject=CASE, county=LANSHAN)
    await registry.assignments.case_registered(event=event, case=data)
    return Roster(numbers=numbers)


async def state(registry: RegistryHarness) -> dict[str, Any]:
    """What an attack must not change: every organisation, mediator and case snapshot, and
    the history."""
    repo = registry.service.repo

    def strip(docs: list[dict[str, Any]]) -> dict[str, Any]:
        return {d["_id"]: d for d in docs}

    return {
        "organisations": strip(await repo.organisations.find({}).to_list()),
        "mediators": strip(await repo.mediators.find({}).to_list()),
        "cases": strip(await repo.cases.find({}).to_list()),
        "history": await repo.history.count_documents({}),
        "decisions": await repo.decisions.count_documents({}),
    }


# -- the probes ------------------------------------------------------------------------------


async def test_a_bureau_of_another_county_cannot_move_a_mediator_by_naming_its_id(
    registry: RegistryHarness, roster: Roster
) -> None:
    before = await state(registry)
    moved = await registry.http.post(
        "/api/v1/mediators",
        json=mediator(M1, LUOZHUANG, OTHER_CENTRE, roster.numbers[M1]),
        headers=registry.headers(Role.BUREAU, [LUOZHUANG]),
    )
    assert moved.status_code == 404, moved.text
    assert moved.json()["code"] == "not_found"
    stored = await registry.service.repo.get_mediator(M1)
    assert stored is not None and stored.county == LANSHAN
    assert stored.version == before["mediators"][M1]["version"]
    assert await state(registry) == before


async def test_a_registration_without_id_never_takes_over_another_countys_mediator(
    registry: RegistryHarness, roster: Roster
) -> None:
    before = await state(registry)
    body = mediator(M1, LUOZHUANG, OTHER_CENTRE, roster.numbers[M1])
    body.pop("id")  # matched by the ID number, which is 兰山's mediator's
    taken = await registry.http.post(
        "/api/v1/mediators", json=body, headers=registry.headers(Role.BUREAU, [LUOZHUANG])
    )
    assert taken.status_code == 404, taken.text
    assert await state(registry) == before


async def test_a_bureau_of_another_county_cannot_move_an_organisation(
    registry: RegistryHarness, roster: Roster
) -> None:
    before = await state(registry)
    moved = await registry.http.post(
        "/api/v1/organisations",
        json=organisation(TC2, LUOZHUANG, "371311001"),
        headers=registry.headers(Role.BUREAU, [LUOZHUANG]),
    )
    assert moved.status_code == 404, moved.text
    stored = await registry.service.repo.get_organisation(TC2)
    assert stored is not None and stored.county == LANSHAN
    assert stored.version == before["organisations"][TC2]["version"]
    assert await state(registry) == before


async def test_an_organisation_cannot_be_put_under_another_countys_parent(
    registry: RegistryHarness, roster: Roster
) -> None:
    before = await state(registry)
    linked = await registry.http.post(
        "/api/v1/organisations",
        json=organisation("sc-311-tc", LUOZHUANG, "371311001", parent_id=CENTRE),
        headers=registry.headers(Role.BUREAU, [LUOZHUANG]),
    )
    assert linked.status_code == 422, linked.text
    # The same answer as a parent that does not exist: no oracle.
    assert [e["code"] for e in linked.json()["errors"]] == ["unknown_parent"]
    assert await state(registry) == before


async def test_an_import_naming_another_countys_records_changes_nothing(
    registry: RegistryHarness, roster: Roster
) -> None:
    before = await state(registry)
    bureau = registry.headers(Role.BUREAU, [LUOZHUANG])
    rows = MEDIATOR_CSV + f"{M1},调解员甲,{roster.numbers[M1]},{LUOZHUANG},{OTHER_CENTRE}\n"
    imported = await registry.http.post(
        "/api/v1/imports/mediators",
        content=rows.encode(),
        params={"dry_run": "false", "format": "csv"},
        headers=bureau,
    )
    assert imported.status_code == 422, imported.text
    assert imported.json()["imported"] is False
    assert [(e["row"], e["code"]) for e in imported.json()["errors"]] == [(2, "not_found")]
    rows = ORGANISATION_CSV + f"{TC2},罗庄某调委会,罗某,乡镇（街道）调委会,乡镇,{LUOZHUANG},371311001\n"
    imported = await registry.http.post(
        "/api/v1/imports/organisations",
        content=rows.encode(),
        params={"dry_run": "false", "format": "csv"},
        headers=bureau,
    )
    assert imported.status_code == 422, imported.text
    assert [(e["row"], e["code"]) for e in imported.json()["errors"]] == [(2, "not_found")]
    assert await state(registry) == before


async def test_another_countys_organisation_cannot_be_linked_to_ones_own_mediator(
    registry: RegistryHarness, roster: Roster
) -> None:
    before = await state(registry)
    body = mediator(OTHER_M, LUOZHUANG, OTHER_CENTRE, roster.numbers[OTHER_M])
    body["organisation_ids"] = [OTHER_CENTRE, TC]
    linked = await registry.http.post(
        "/api/v1/mediators", json=body, headers=registry.headers(Role.BUREAU, [LUOZHUANG])
    )
    assert linked.status_code == 422, linked.text
    assert [e["code"] for e in linked.json()["errors"]] == ["unknown_organisation"]
    # A bureau of both counties still cannot give a 罗庄 mediator a 兰山 organisation.
    both = await registry.http.post(
        "/api/v1/mediators", json=body, headers=registry.headers(Role.BUREAU, [LANSHAN, LUOZHUANG])
    )
    assert both.status_code == 422, both.text
    assert [e["code"] for e in both.json()["errors"]] == ["organisation_other_county"]
    rows = MEDIATOR_CSV + f"{OTHER_M},调解员乙,{roster.numbers[OTHER_M]},{LUOZHUANG},{OTHER_CENTRE}、{TC}\n"
    imported = await registry.http.post(
        "/api/v1/imports/mediators",
        content=rows.encode(),
        params={"dry_run": "false", "format": "csv"},
        headers=registry.headers(Role.BUREAU, [LUOZHUANG]),
    )
    assert imported.status_code == 422, imported.text
    assert {e["code"] for e in imported.json()["errors"]} == {"unknown_organisation"}
    assert await state(registry) == before


async def test_an_organisation_scoped_token_acts_only_within_its_organisation(
    registry: RegistryHarness, roster: Roster
) -> None:
    before = await state(registry)
    committee = registry.headers(Role.BUREAU, [LANSHAN], organisation_id=TC)
    # Another organisation's mediator is not theirs to see, nor to edit.
    other = await registry.http.post(
        "/api/v1/mediators", json=mediator(M2, LANSHAN, TC2, roster.numbers[M2], grade="2"), headers=committee
    )
    assert other.status_code == 404, other.text
    suspended = await registry.http.post(
        f"/api/v1/mediators/{M2}/status",
        json={"status": "suspended", "reason": "越权停职"},
        headers=committee,
    )
    assert suspended.status_code == 404, suspended.text
    assert (await registry.http.get(f"/api/v1/mediators/{M2}", headers=committee)).status_code == 404
    listed = await registry.http.get("/api/v1/mediators", params={"county": LANSHAN}, headers=committee)
    assert {m["id"] for m in listed.json()} == {M1, "sc-302-m3"}
    # Their own mediator cannot be taken to another organisation.
    moved = await registry.http.post(
        "/api/v1/mediators", json=mediator(M1, LANSHAN, TC2, roster.numbers[M1]), headers=committee
    )
    assert moved.status_code == 403, moved.text
    # Another organisation of the county cannot be re-filed by them.
    refiled = await registry.http.post(
        "/api/v1/organisations", json=organisation(TC2, LANSHAN, "371302002", hours="全天"), headers=committee
    )
    assert refiled.status_code == 403, refiled.text
    assert await state(registry) == before
    # Within their organisation they act as before.
    trained = await registry.http.post(
        f"/api/v1/mediators/{M1}/training",
        json={"course": "调解技巧", "hours": 4, "on": "2026-03-01"},
        headers=committee,
    )
    assert trained.status_code == 201, trained.text


async def test_an_administrator_is_scoped_by_the_counties_of_its_token(
    registry: RegistryHarness, roster: Roster
) -> None:
    before = await state(registry)
    admin = registry.headers(Role.ADMIN, [LUOZHUANG])
    assert (await registry.http.get(f"/api/v1/mediators/{M1}", headers=admin)).status_code == 404
    moved = await registry.http.post(
        "/api/v1/mediators", json=mediator(M1, LUOZHUANG, OTHER_CENTRE, roster.numbers[M1]), headers=admin
    )
    assert moved.status_code == 404, moved.text
    assert await state(registry) == before


# -- every route of the route table ----------------------------------------------------------

Call = Callable[[Roster], tuple[str, str, dict[str, Any]]]  # method, url, httpx keyword arguments


def _mediator_body(roster: Roster) -> dict[str, Any]:
    return {"json": mediator(M1, LUOZHUANG, OTHER_CENTRE, roster.numbers[M1])}


# Each route that takes a record id (in its path or its body), called as a 罗庄 user on 兰山's
# records. A route missing here and from NO_RECORD_ID fails the test below.
ATTACKS: dict[tuple[str, str], Call] = {
    ("POST", "/api/v1/organisations"): lambda r: (
        "POST",
        "/api/v1/organisations",
        {"json": organisation(TC, LUOZHUANG, "371311001")},
    ),
    ("GET", "/api/v1/organisations/{organisation_id}"): lambda r: (
        "GET",
        f"/api/v1/organisations/{TC}",
        {},
    ),
    ("GET", "/api/v1/organisations/{organisation_id}/history"): lambda r: (
        "GET",
        f"/api/v1/organisations/{TC}/history",
        {},
    ),
    ("POST", "/api/v1/mediators"): lambda r: ("POST", "/api/v1/mediators", _mediator_body(r)),
    ("GET", "/api/v1/mediators/{mediator_id}"): lambda r: ("GET", f"/api/v1/mediators/{M1}", {}),
    ("GET", "/api/v1/mediators/{mediator_id}/history"): lambda r: (
        "GET",
        f"/api/v1/mediators/{M1}/history",
        {},
    ),
    ("POST", "/api/v1/mediators/{mediator_id}/status"): lambda r: (
        "POST",
        f"/api/v1/mediators/{M1}/status",
        {"json": {"status": "revoked", "reason": "越权吊销"}},
    ),
    ("POST", "/api/v1/mediators/{mediator_id}/training"): lambda r: (
        "POST",
        f"/api/v1/mediators/{M1}/training",
        {"json": {"course": "越权培训", "hours": 2, "on": "2026-03-01"}},
    ),
    ("POST", "/api/v1/mediators/{mediator_id}/discipline"): lambda r: (
        "POST",
        f"/api/v1/mediators/{M1}/discipline",
        {
            "json": {
                "prohibition": "gifts",
                "note": "越权处分",
                "sanction": "suspension",
                "starts_on": "2026-03-01",
                "ends_on": "2026-06-01",
            }
        },
    ),
    ("POST", "/api/v1/imports/{kind}"): lambda r: (
        "POST",
        "/api/v1/imports/mediators",
        {
            "content": f"{MEDIATOR_CSV}{M1},调解员甲,{r.numbers[M1]},{LUOZHUANG},{OTHER_CENTRE}\n".encode(),
            "params": {"dry_run": "false", "format": "csv"},
        },
    ),
    ("GET", "/api/v1/cases/{case_id}/assignment"): lambda r: ("GET", f"/api/v1/cases/{CASE}/assignment", {}),
    ("POST", "/api/v1/cases/{case_id}/assignment"): lambda r: (
        "POST",
        f"/api/v1/cases/{CASE}/assignment",
        {"json": {"mediator_id": "sc-302-m3", "reason": "越权改派"}},
    ),
}

# Routes that take no record id, only a county filter: they are lists (or a county's report),
# called with another county below they must come back empty (or 404), never with 兰山's records.
NO_RECORD_ID: dict[tuple[str, str], tuple[Call, str]] = {
    ("GET", "/api/v1/organisations"): (
        lambda r: ("GET", "/api/v1/organisations", {"params": {"county": LANSHAN}}),
        "a list by county filter: another county's comes back empty",
    ),
    ("GET", "/api/v1/mediators"): (
        lambda r: ("GET", "/api/v1/mediators", {"params": {"organisation_id": TC}}),
        "a list by county or organisation filter: another county's comes back empty",
    ),
    ("GET", "/api/v1/compliance"): (
        lambda r: ("GET", "/api/v1/compliance", {"params": {"county": LANSHAN, "format": "csv"}}),
        "a county's report: another county's answers 404",
    ),
}


def registry_routes(registry: RegistryHarness) -> set[tuple[str, str]]:
    """(method, path) of every API route the app serves, from its route table (FastAPI
    0.165 keeps an included router as one entry that lists its effective routes)."""
    found: list[Any] = []
    for route in registry.app.routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif callable(contexts := getattr(route, "effective_route_contexts", None)):
            found.extend(contexts())
    return {(method, r.path) for r in found if r.path.startswith("/api/") for method in (r.methods or ())}


def test_every_route_of_the_registry_is_attacked_or_listed_as_taking_no_id(
    registry: RegistryHarness,
) -> None:
    routes = registry_routes(registry)
    unchecked = routes - set(ATTACKS) - set(NO_RECORD_ID)
    assert not unchecked, f"routes without a scope test (add them to ATTACKS): {sorted(unchecked)}"
    assert set(ATTACKS) | set(NO_RECORD_ID) <= routes, "a listed route no longer exists"


@pytest.mark.parametrize("role", [Role.BUREAU, Role.ADMIN, Role.CENTER], ids=str)
async def test_every_route_called_from_another_county_answers_404_or_403_and_changes_nothing(
    registry: RegistryHarness, roster: Roster, role: Role
) -> None:
    stranger = registry.headers(role, [LUOZHUANG])
    before = await state(registry)
    for key, call in sorted(ATTACKS.items()):
        method, url, kwargs = call(roster)
        response = await registry.http.request(method, url, headers=stranger, **kwargs)
        if key == ("POST", "/api/v1/imports/{kind}") and response.status_code == 422:
            # An import answers with its report: the row naming 兰山's mediator is refused.
            assert {e["code"] for e in response.json()["errors"]} == {"not_found"}, response.text
            continue
        assert response.status_code in (403, 404), f"{method} {url}: {response.status_code} {response.text}"
        assert await state(registry) == before, f"{method} {url} changed something"
    for _key, (call, _why) in sorted(NO_RECORD_ID.items()):
        method, url, kwargs = call(roster)
        response = await registry.http.request(method, url, headers=stranger, **kwargs)
        assert response.status_code in (200, 403, 404), f"{method} {url}: {response.text}"
        if response.status_code == 200:
            assert response.json() == [], f"{method} {url} showed another county's records"
    assert await state(registry) == before


async def test_every_route_called_from_another_organisation_answers_404_or_403_and_changes_nothing(
    registry: RegistryHarness, roster: Roster
) -> None:
    """The same attacks by a token of 兰山 confined to the other committee (TC2): the records
    of TC (its mediators, its case) are not theirs."""
    stranger = registry.headers(Role.BUREAU, [LANSHAN], organisation_id=TC2)
    before = await state(registry)
    for key, call in sorted(ATTACKS.items()):
        if key[1].startswith("/api/v1/organisations"):
            continue  # organisations are the county's directory: readable, and re-filing is below
        method, url, kwargs = call(roster)
        if key == ("POST", "/api/v1/mediators"):
            kwargs = {"json": mediator(M1, LANSHAN, TC2, roster.numbers[M1])}
        if key == ("POST", "/api/v1/imports/{kind}"):
            rows = MEDIATOR_CSV + f"{M1},调解员甲,{roster.numbers[M1]},{LANSHAN},{TC2}\n"
            kwargs = {**kwargs, "content": rows.encode()}
        response = await registry.http.request(method, url, headers=stranger, **kwargs)
        if key == ("POST", "/api/v1/imports/{kind}") and response.status_code == 422:
            assert {e["code"] for e in response.json()["errors"]} == {"not_found"}, response.text
            continue
        assert response.status_code in (403, 404), f"{method} {url}: {response.status_code} {response.text}"
    refiled = await registry.http.post(
        "/api/v1/organisations", json=organisation(TC, LANSHAN, "371302001", hours="全天"), headers=stranger
    )
    assert refiled.status_code == 403, refiled.text
    assert await state(registry) == before
