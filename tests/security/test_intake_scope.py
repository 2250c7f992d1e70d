"""Intake as a user of another county, or of another organisation of the same county, would
attack it: every route of intake's route table that takes a case id, called on a 兰山 case
with a token of 罗庄 and with a token of another 兰山 organisation, answers 404 or 403 and
changes nothing; an acceptance may not route a case to an organisation outside the
caller's. A route added without such a check fails the generated test until it is listed
with its request below (or, if it takes no case id, among the exceptions with why)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from fastapi.routing import APIRoute

from tests.intake.conftest import CENTRE, COMMITTEE, Intake, body, organisation, running_intake
from tiaojie.contracts.common import Role
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.security

LANSHAN, LUOZHUANG, HEDONG = "371302", "371311", "371312"  # 兰山区, 罗庄区, 河东区
TC2 = f"org-{LANSHAN}002-tc"  # another committee of 兰山, under the centre as COMMITTEE is
OTHER_CENTRE = f"org-{LUOZHUANG}-centre"
# 河东 has only two industry committees (neither covers neighbourhood disputes): its
# neighbourhood cases stay unrouted and a desk names the organisation when accepting.
HD_MEDICAL, HD_TRAFFIC = f"org-{HEDONG}-medical", f"org-{HEDONG}-traffic"
MEDIATOR = "sc-med-1"


def _directory() -> list[Any]:
    """The organisations this module adds to the standard ones (the committee gains its parent)."""
    return [
        organisation(
            COMMITTEE,
            kind="township_committee",
            level="township",
            division=f"{LANSHAN}001",
            short="临兰街",
            name="兰山街道人民调解委员会",
            parent_id=CENTRE,
            version=2,
        ),
        organisation(
            TC2,
            kind="township_committee",
            level="township",
            division=f"{LANSHAN}002",
            short="临兰二",
            parent_id=CENTRE,
        ),
        organisation(
            OTHER_CENTRE, kind="centre", level="county", division=LUOZHUANG, short="临罗", county=LUOZHUANG
        ),
        organisation(
            HD_MEDICAL,
            kind="industry_committee",
            level="county",
            division=HEDONG,
            short="临河医",
            county=HEDONG,
            categories=["medical"],
        ),
        organisation(
            HD_TRAFFIC,
            kind="industry_committee",
            level="county",
            division=HEDONG,
            short="临河交",
            county=HEDONG,
            categories=["road_traffic"],
        ),
    ]


@pytest.fixture(scope="module")
async def intake(settings: RuntimeSettings) -> AsyncIterator[Intake]:
    async with running_intake(settings, suffix="_sc") as running:
        for org in _directory():
            await running.service.project_organisation(event=org)
        yield running


async def register(intake: Intake, seed: str, **overrides: Any) -> dict[str, Any]:
    county = overrides.get("county", LANSHAN)
    answer = await intake.client.post(
        "/api/v1/disputes",
        json=body(seed, category="neighbourhood", **overrides),
        headers=intake.headers(Role.DESK, [county]),
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


@pytest.fixture(scope="module")
async def case_id(intake: Intake) -> str:
    """A received case of 兰山, routed to the 兰山街道 committee."""
    case = await register(intake, "intake-scope-case")
    assert case["organisation_id"] == COMMITTEE, case
    return str(case["id"])


async def state(intake: Intake) -> dict[str, Any]:
    """What an attack must not change: every case, its revisions and the audit log (a
    read that is refused is not a read)."""
    repo = intake.service.repo
    return {
        "cases": {d["_id"]: d for d in await repo.cases.find({}).to_list()},
        "revisions": await repo.store.log.count_documents({}),
        "audit": await repo.audit.count_documents({}),
    }


# -- every route of the route table ----------------------------------------------------------

Call = Callable[[str], tuple[str, str, dict[str, Any]]]  # case id -> method, url, httpx kwargs
TODAY = "2026-03-02"


def _post(action: str, payload: dict[str, Any] | None = None) -> Call:
    return lambda case: ("POST", f"/api/v1/disputes/{case}/{action}", {"json": payload or {}})


# Each route that takes a case id, with a request its rules would otherwise act on. A route
# missing here and from NO_CASE_ID fails the test below.
ATTACKS: dict[tuple[str, str], Call] = {
    ("GET", "/api/v1/disputes/{case_id}"): lambda c: (
        "GET",
        f"/api/v1/disputes/{c}",
        {"params": {"reveal": "true"}},
    ),
    ("GET", "/api/v1/disputes/{case_id}/file"): lambda c: ("GET", f"/api/v1/disputes/{c}/file", {}),
    ("POST", "/api/v1/disputes/{case_id}/accept"): _post("accept"),
    ("POST", "/api/v1/disputes/{case_id}/reject"): _post("reject", {"reason_code": "outside_scope"}),
    ("PUT", "/api/v1/disputes/{case_id}/category"): lambda c: (
        "PUT",
        f"/api/v1/disputes/{c}/category",
        {"json": {"category": "labour"}},
    ),
    ("POST", "/api/v1/disputes/{case_id}/sessions"): _post(
        "sessions", {"held_at": "2026-03-02T02:00:00Z", "place": "调解室"}
    ),
    ("POST", "/api/v1/disputes/{case_id}/resolve"): _post("resolve", {"form": "oral"}),
    ("POST", "/api/v1/disputes/{case_id}/fail"): _post("fail", {"route": "litigation"}),
    ("POST", "/api/v1/disputes/{case_id}/performance"): _post("performance", {"performed_on": TODAY}),
    ("POST", "/api/v1/disputes/{case_id}/follow-up"): _post(
        "follow-up", {"visited_on": TODAY, "method": "phone"}
    ),
    ("POST", "/api/v1/disputes/{case_id}/archive"): _post("archive"),
    ("POST", "/api/v1/disputes/{case_id}/withdraw"): _post("withdraw", {"reason": "越权撤回"}),
    ("POST", "/api/v1/disputes/{case_id}/documents"): _post(
        "documents", {"part": "application_form", "title": "越权材料", "uri": "/x.pdf"}
    ),
    ("POST", "/api/v1/disputes/{case_id}/clock/pause"): _post("clock/pause", {"reason": "越权暂停"}),
    ("POST", "/api/v1/disputes/{case_id}/clock/resume"): _post("clock/resume"),
    ("POST", "/api/v1/disputes/{case_id}/clock/extend"): _post(
        "clock/extend",
        {"days": 10, "applicant_consent": True, "respondent_consent": True, "consent_record": "越权延期"},
    ),
    ("POST", "/api/v1/disputes/{case_id}/nominations"): _post("nominations", {"note": "越权推荐"}),
    ("GET", "/api/v1/audit"): lambda c: ("GET", "/api/v1/audit", {"params": {"case_id": c}}),
}

# Routes that take no case id, and why each is safe to leave out of the attacks.
NO_CASE_ID: dict[tuple[str, str], str] = {
    (
        "POST",
        "/api/v1/disputes",
    ): ("registers a new case; the county of the submission is checked against the token"),
    ("GET", "/api/v1/disputes"): "a list of the caller's scope: checked below to show none of the case",
    ("GET", "/api/v1/track/{code}"): "anyone's, by tracking code (no token, nothing personal)",
    ("GET", "/api/v1/reference"): "codes and labels, no records",
}


def intake_routes(intake: Intake) -> set[tuple[str, str]]:
    """(method, path) of every API route the app serves, from its route table."""
    found: list[Any] = []
    for route in intake.app.routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif callable(contexts := getattr(route, "effective_route_contexts", None)):
            found.extend(contexts())
    paths = {(method, r.path) for r in found if r.path.startswith("/api/") for method in (r.methods or ())}
    # The tracking route is declared with a path converter ({code:path}).
    return {(m, p.replace("{code:path}", "{code}")) for m, p in paths}


def test_every_route_of_intake_is_attacked_or_listed_as_taking_no_case_id(intake: Intake) -> None:
    routes = intake_routes(intake)
    unchecked = routes - set(ATTACKS) - set(NO_CASE_ID)
    assert not unchecked, f"routes without a scope test (add them to ATTACKS): {sorted(unchecked)}"
    assert set(ATTACKS) | set(NO_CASE_ID) <= routes, "a listed route no longer exists"


async def attack_every_route(intake: Intake, case_id: str, headers: dict[str, str]) -> None:
    before = await state(intake)
    for (_method, path), call in sorted(ATTACKS.items()):
        verb, url, kwargs = call(case_id)
        response = await intake.client.request(verb, url, headers=headers, **kwargs)
        if path == "/api/v1/audit" and response.status_code == 200:
            # The audit answers a case outside the caller's reach as if it had no audit.
            assert response.json()["entries"] == [], f"{verb} {url} showed the case's audit"
        else:
            assert response.status_code in (403, 404), f"{verb} {url}: {response.status_code} {response.text}"
        assert await state(intake) == before, f"{verb} {url} changed something"
    listed = await intake.client.get("/api/v1/disputes", params={"limit": 200}, headers=headers)
    assert listed.status_code in (200, 403), listed.text
    if listed.status_code == 200:
        assert case_id not in {c["id"] for c in listed.json()}, "the list showed the case"
    assert await state(intake) == before


STAFF = [Role.DESK, Role.CENTER, Role.BUREAU, Role.ADMIN, Role.MEDIATOR]


@pytest.mark.parametrize("role", STAFF, ids=str)
async def test_every_route_called_from_another_county_answers_404_or_403_and_changes_nothing(
    intake: Intake, case_id: str, role: Role
) -> None:
    claims: dict[str, Any] = {"mediator_id": MEDIATOR} if role == Role.MEDIATOR else {}
    await attack_every_route(intake, case_id, intake.headers(role, [LUOZHUANG], **claims))
    # The same with a token of 罗庄's own centre.
    await attack_every_route(
        intake, case_id, intake.headers(role, [LUOZHUANG], organisation_id=OTHER_CENTRE, **claims)
    )


@pytest.mark.parametrize("role", STAFF, ids=str)
async def test_every_route_called_from_another_organisation_answers_404_or_403_and_changes_nothing(
    intake: Intake, case_id: str, role: Role
) -> None:
    """A token of 兰山 confined to the other committee (TC2): the case of COMMITTEE is not theirs."""
    claims: dict[str, Any] = {"mediator_id": MEDIATOR} if role == Role.MEDIATOR else {}
    await attack_every_route(intake, case_id, intake.headers(role, [LANSHAN], organisation_id=TC2, **claims))


# -- within one's organisation, and acceptance as it will be --------------------------------


async def test_the_organisation_and_the_centre_above_it_still_act_on_the_case(
    intake: Intake, unique: str
) -> None:
    case = await register(intake, unique)
    assert case["organisation_id"] == COMMITTEE
    url = f"/api/v1/disputes/{case['id']}"
    for org in (COMMITTEE, CENTRE):
        read = await intake.client.get(url, headers=intake.headers(Role.DESK, [LANSHAN], organisation_id=org))
        assert read.status_code == 200, read.text
        listed = await intake.client.get(
            "/api/v1/disputes",
            params={"limit": 200},
            headers=intake.headers(Role.CENTER, [LANSHAN], organisation_id=org),
        )
        assert case["id"] in {c["id"] for c in listed.json()}
    accepted = await intake.client.post(
        f"{url}/accept", json={}, headers=intake.headers(Role.DESK, [LANSHAN], organisation_id=COMMITTEE)
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    # An organisation's auditor reads the audit of its case, never the county's whole log.
    auditor = intake.headers(Role.BUREAU, [LANSHAN], organisation_id=COMMITTEE)
    own = await intake.client.get("/api/v1/audit", params={"case_id": case["id"]}, headers=auditor)
    assert own.status_code == 200 and own.json()["entries"], own.text
    assert (await intake.client.get("/api/v1/audit", headers=auditor)).status_code == 403
    # Tokens without an organisation keep the county's reach.
    assert (await intake.client.get(url, headers=intake.headers(Role.BUREAU, [LANSHAN]))).status_code == 200


async def test_an_acceptance_cannot_route_a_case_outside_the_callers_organisations(
    intake: Intake, unique: str
) -> None:
    case = await register(intake, unique, county=HEDONG, township=None)
    assert case["organisation_id"] is None, case  # unrouted: the desk names the organisation
    url = f"/api/v1/disputes/{case['id']}/accept"
    desk = intake.headers(Role.DESK, [HEDONG], organisation_id=HD_MEDICAL)
    # The unrouted case is the county's: the organisation-scoped desk sees it.
    assert (await intake.client.get(f"/api/v1/disputes/{case['id']}", headers=desk)).status_code == 200
    listed = await intake.client.get("/api/v1/disputes", params={"limit": 200}, headers=desk)
    assert case["id"] in {c["id"] for c in listed.json()}
    before = await state(intake)
    for org, codes in (
        (HD_TRAFFIC, (403,)),  # of the county, but not the desk's own organisation
        (CENTRE, (422,)),  # another county's
        ("org-no-such", (422,)),
    ):
        answer = await intake.client.post(url, json={"organisation_id": org}, headers=desk)
        assert answer.status_code in codes, f"{org}: {answer.status_code} {answer.text}"
        assert await state(intake) == before, f"accepting for {org} changed something"
    accepted = await intake.client.post(url, json={"organisation_id": HD_MEDICAL}, headers=desk)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["organisation_id"] == HD_MEDICAL


async def test_a_mediator_still_sees_only_their_own_cases(intake: Intake, case_id: str) -> None:
    mine = intake.headers(Role.MEDIATOR, [LANSHAN], mediator_id=MEDIATOR, organisation_id=COMMITTEE)
    assert (await intake.client.get(f"/api/v1/disputes/{case_id}", headers=mine)).status_code == 404
