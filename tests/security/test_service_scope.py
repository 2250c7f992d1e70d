"""Referral, stats and the case library as a user of another county, or of another
organisation, would attack them: every route of each service's route table is called on
兰山's records with a token of 罗庄 (and, where the service knows organisations, of 兰山's
other committee) and must answer 404 or 403 with nothing changed; lists and county figures
come back empty or 404. A route added without such a check fails the generated test until
it is listed with its request below (or, taking no record id, with why)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from devkit.tokens import token as dev_token
from tests.library.conftest import Library, new_case_id, nomination, people, registered
from tests.library.conftest import library as library
from tests.referral.conftest import (
    CENTRE,
    COMMITTEE,
    OTHER_COMMITTEE,
    T0,
    Factory,
    court,
    referral_data,
)
from tests.referral.conftest import make_referral as make_referral
from tests.referral.conftest import registered as case_registered
from tests.stats.conftest import stats as stats
from tests.support.data import COUNTY, OTHER_COUNTY, auth
from tests.support.kafka import eventually
from tiaojie.contracts import topics
from tiaojie.contracts.common import Role
from tiaojie.referral.api import router as referral_router
from tiaojie.runtime.clock import ManualClock
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.integration

Request = tuple[str, str, dict[str, Any]]  # method, url, httpx keyword arguments


def api_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every API route the app serves, from its route table (FastAPI
    0.165 keeps an included router as one entry that lists its effective routes)."""
    found: list[Any] = []
    for route in app.routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif callable(contexts := getattr(route, "effective_route_contexts", None)):
            found.extend(contexts())
    return {(method, r.path) for r in found if r.path.startswith("/api/") for method in (r.methods or ())}


def assert_covered(
    app: FastAPI, attacks: dict[tuple[str, str], Any], exceptions: dict[tuple[str, str], Any]
) -> None:
    routes = api_routes(app)
    unchecked = routes - set(attacks) - set(exceptions)
    assert not unchecked, f"routes without a scope test (add them to the attacks): {sorted(unchecked)}"
    assert set(attacks) | set(exceptions) <= routes, "a listed route no longer exists"


# -- referral ---------------------------------------------------------------------------------


class ReferralRecords:
    """兰山's records: an agency, a referral routed to the township committee, a case held
    by the committee and a 交办 from the centre down to the committee (awaiting an answer)."""

    def __init__(self, agency: str, referral: str, case: str, transfer: str) -> None:
        self.agency, self.referral, self.case, self.transfer = agency, referral, case, transfer


async def referral_mesh(
    make_referral: Factory, unique: str
) -> tuple[Any, httpx.AsyncClient, ReferralRecords]:
    parts = await make_referral(ManualClock(T0))
    service = parts.service
    agency = await court(parts, f"sc-court-{unique}")
    referral, _ = await service.receive(agency=agency, data=referral_data(f"SC-{unique}"), event_id=None)
    assert referral.organisation_id == COMMITTEE
    held, moving = f"sc-held-{unique}", f"sc-moving-{unique}"
    await service.on_case_events(
        events=[case_registered(held, organisation_id=COMMITTEE), case_registered(moving)]
    )
    transfer, _ = await service.request_transfer(
        case_id=moving,
        kind="assign_down",
        to_organisation_id=COMMITTEE,
        reason="属地管辖",
        reason_code="",
        due_days=20,
        by="centre-1",
        counties=[COUNTY],
        key=None,
    )
    app = parts.host.http_app([referral_router], title="referral", description="scope test")
    app.state.referral = service
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://referral", timeout=60)
    return parts, client, ReferralRecords(agency.id, referral.id, held, transfer.id)


async def referral_state(parts: Any) -> dict[str, Any]:
    """What an attack must not change: every document of every collection of referral."""
    db = parts.repository.db
    return {name: await db[name].find({}).to_list() for name in sorted(await db.list_collection_names())}


REFERRAL_ATTACKS: dict[tuple[str, str], Callable[[ReferralRecords], Request]] = {
    ("POST", "/api/v1/agencies"): lambda r: (
        "POST",
        "/api/v1/agencies",
        {"json": {"id": r.agency, "kind": "court", "county": OTHER_COUNTY, "name": "罗庄区人民法院"}},
    ),
    ("POST", "/api/v1/agencies/{agency_id}/credentials"): lambda r: (
        "POST",
        f"/api/v1/agencies/{r.agency}/credentials",
        {},
    ),
    ("POST", "/api/v1/agencies/{agency_id}/deactivate"): lambda r: (
        "POST",
        f"/api/v1/agencies/{r.agency}/deactivate",
        {},
    ),
    ("GET", "/api/v1/referrals/{referral_id}"): lambda r: ("GET", f"/api/v1/referrals/{r.referral}", {}),
    ("POST", "/api/v1/referrals/{referral_id}/accept"): lambda r: (
        "POST",
        f"/api/v1/referrals/{r.referral}/accept",
        {"json": {}},
    ),
    ("POST", "/api/v1/referrals/{referral_id}/decline"): lambda r: (
        "POST",
        f"/api/v1/referrals/{r.referral}/decline",
        {"json": {"reason": "越权退回"}},
    ),
    ("POST", "/api/v1/referrals/{referral_id}/extend"): lambda r: (
        "POST",
        f"/api/v1/referrals/{r.referral}/extend",
        {"json": {"days": 10, "by_agreement": True, "reason": "越权延期"}},
    ),
    ("POST", "/api/v1/transfers"): lambda r: (
        "POST",
        "/api/v1/transfers",
        {
            "json": {
                "case_id": r.case,
                "kind": "lateral",
                "to_organisation_id": OTHER_COMMITTEE,
                "reason": "越权转办",
            }
        },
    ),
    ("GET", "/api/v1/transfers/{transfer_id}"): lambda r: ("GET", f"/api/v1/transfers/{r.transfer}", {}),
    ("POST", "/api/v1/transfers/{transfer_id}/accept"): lambda r: (
        "POST",
        f"/api/v1/transfers/{r.transfer}/accept",
        {},
    ),
    ("POST", "/api/v1/transfers/{transfer_id}/decline"): lambda r: (
        "POST",
        f"/api/v1/transfers/{r.transfer}/decline",
        {"json": {"reason": "越权拒收"}},
    ),
    ("POST", "/api/v1/transfers/{transfer_id}/extend"): lambda r: (
        "POST",
        f"/api/v1/transfers/{r.transfer}/extend",
        {"json": {"days": 10, "by_agreement": True, "reason": "越权延期"}},
    ),
    ("GET", "/api/v1/cases/{case_id}/hops"): lambda r: ("GET", f"/api/v1/cases/{r.case}/hops", {}),
}

# Routes without a record id: lists, which must come back empty for another county or
# organisation, and an agency's own submission (its agency is its token's, not a choice).
REFERRAL_NO_RECORD_ID: dict[tuple[str, str], tuple[Callable[[ReferralRecords], Request] | None, str]] = {
    ("GET", "/api/v1/agencies"): (
        lambda r: ("GET", "/api/v1/agencies", {}),
        "the agencies of the caller's counties: another county's come back empty",
    ),
    ("GET", "/api/v1/referrals"): (
        lambda r: ("GET", "/api/v1/referrals", {"params": {"county": COUNTY}}),
        "referrals by county filter: another county's or organisation's come back empty",
    ),
    ("POST", "/api/v1/referrals"): (
        None,
        "an agency refers a dispute as the agency its token names (agency tokens only); "
        "what it may then see is tested by GET /referrals/{id} with an agency of its own",
    ),
}


async def referral_attacks(
    parts: Any,
    client: httpx.AsyncClient,
    records: ReferralRecords,
    headers: dict[str, str],
    *,
    skip: set[str],
) -> None:
    before = await referral_state(parts)
    for key, call in sorted(REFERRAL_ATTACKS.items()):
        if any(key[1].startswith(prefix) for prefix in skip):
            continue
        method, url, kwargs = call(records)
        response = await client.request(method, url, headers=headers, **kwargs)
        assert response.status_code in (403, 404), f"{method} {url}: {response.status_code} {response.text}"
        assert await referral_state(parts) == before, f"{method} {url} changed something"
    for key, (list_call, _why) in sorted(REFERRAL_NO_RECORD_ID.items()):
        if list_call is None or any(key[1].startswith(prefix) for prefix in skip):
            continue
        method, url, kwargs = list_call(records)
        response = await client.request(method, url, headers=headers, **kwargs)
        assert response.status_code in (200, 403, 404), f"{method} {url}: {response.text}"
        if response.status_code == 200:
            shown = {item["id"] for item in response.json()}
            assert not shown & {records.agency, records.referral}, f"{method} {url} showed {shown}"
    assert await referral_state(parts) == before


async def test_every_route_of_referral_is_attacked_or_listed_as_taking_no_id(
    make_referral: Factory, unique: str
) -> None:
    _parts, client, _ = await referral_mesh(make_referral, unique)
    async with client:
        assert_covered(client._transport.app, REFERRAL_ATTACKS, REFERRAL_NO_RECORD_ID)  # type: ignore[attr-defined]


@pytest.mark.parametrize("role", [Role.ADMIN, Role.BUREAU, Role.DESK], ids=str)
async def test_every_referral_route_from_another_county_answers_404_or_403_and_changes_nothing(
    make_referral: Factory, settings: RuntimeSettings, unique: str, role: Role
) -> None:
    parts, client, records = await referral_mesh(make_referral, unique)
    async with client:
        await referral_attacks(parts, client, records, auth(settings, role, [OTHER_COUNTY]), skip=set())


async def test_every_referral_route_from_another_organisation_answers_404_or_403_and_changes_nothing(
    make_referral: Factory, settings: RuntimeSettings, unique: str
) -> None:
    """A desk of 兰山 confined to the other committee: the committee's referral, its case
        and the transfer to it are not theirs. Agencies are the county's directory (administrators
    change them), not an organisation's."""
    parts, client, records = await referral_mesh(make_referral, unique)
    desk = auth(settings, Role.DESK, [COUNTY], organisation_id=OTHER_COMMITTEE)
    async with client:
        await referral_attacks(parts, client, records, desk, skip={"/api/v1/agencies"})
        # Nor can they take the committee's referral into their own organisation.
        taken = await client.post(
            f"/api/v1/referrals/{records.referral}/accept",
            json={"organisation_id": OTHER_COMMITTEE},
            headers=desk,
        )
        assert taken.status_code in (403, 404), taken.text
        # The centre above the committee acts for it; the committee itself too.
        centre = auth(settings, Role.CENTER, [COUNTY], organisation_id=CENTRE)
        seen = await client.get(f"/api/v1/referrals/{records.referral}", headers=centre)
        assert seen.status_code == 200, seen.text
        committee = auth(settings, Role.DESK, [COUNTY], organisation_id=COMMITTEE)
        accepted = await client.post(f"/api/v1/transfers/{records.transfer}/accept", headers=committee)
        assert accepted.status_code == 200, accepted.text


# -- stats --------------------------------------------------------------------------------------

STATS_COUNTY = "371395"  # a county of this test alone in stats' namespace
STATS_ATTACKS: dict[tuple[str, str], Callable[[str], Request]] = {
    ("GET", "/api/v1/alerts/{alert_id}"): lambda alert: ("GET", f"/api/v1/alerts/{alert}", {}),
    ("GET", "/api/v1/summary"): lambda alert: (
        "GET",
        "/api/v1/summary",
        {"params": {"county": STATS_COUNTY}},
    ),
    ("GET", "/api/v1/alerts"): lambda alert: ("GET", "/api/v1/alerts", {"params": {"county": STATS_COUNTY}}),
    ("GET", "/api/v1/forecast"): lambda alert: (
        "GET",
        "/api/v1/forecast",
        {"params": {"county": STATS_COUNTY}},
    ),
    ("GET", "/api/v1/reports/monthly"): lambda alert: (
        "GET",
        "/api/v1/reports/monthly",
        {"params": {"county": STATS_COUNTY, "month": "2026-03"}},
    ),
}
STATS_NO_RECORD_ID = {
    ("POST", "/api/v1/analytics/run"): "administrators run the daily analytics of every county: it "
    "names no record and no county, and answers only counts",
}


# -- the case library ---------------------------------------------------------------------------

# Published entries are anonymised and meant to be read by staff of every county (the
# library's README): reading one, and its Word document, stays open; curation, unpublished
# entries and suggestions for an open case are the county's.
LIBRARY_ATTACKS: dict[tuple[str, str], Callable[[dict[str, str]], Request]] = {
    ("GET", "/api/v1/entries/{entry_id}"): lambda r: ("GET", f"/api/v1/entries/{r['nominated']}", {}),
    ("PATCH", "/api/v1/entries/{entry_id}"): lambda r: (
        "PATCH",
        f"/api/v1/entries/{r['nominated']}",
        {"json": {"title": "越权修改"}},
    ),
    ("POST", "/api/v1/entries/{entry_id}/publish"): lambda r: (
        "POST",
        f"/api/v1/entries/{r['nominated']}/publish",
        {},
    ),
    ("POST", "/api/v1/entries/{entry_id}/decline"): lambda r: (
        "POST",
        f"/api/v1/entries/{r['nominated']}/decline",
        {"json": {"reason": "越权不予采用"}},
    ),
    ("POST", "/api/v1/entries/{entry_id}/withdraw"): lambda r: (
        "POST",
        f"/api/v1/entries/{r['published']}/withdraw",
        {"json": {"reason": "越权撤下"}},
    ),
    ("GET", "/api/v1/entries/{entry_id}/document"): lambda r: (
        "GET",
        f"/api/v1/entries/{r['nominated']}/document",
        {},
    ),
    ("GET", "/api/v1/suggestions"): lambda r: ("GET", "/api/v1/suggestions", {"params": {"case": r["open"]}}),
    ("POST", "/api/v1/suggestions"): lambda r: (
        "POST",
        "/api/v1/suggestions",
        {"json": {"case_id": r["open"], "description": "邻居过道堆放杂物"}},
    ),
}
LIBRARY_NO_RECORD_ID = {
    ("GET", "/api/v1/entries"): "the curation queue of the caller's counties: another county's is empty",
    ("GET", "/api/v1/search"): "searches published (anonymised) cases only, open to every county by design",
}


async def library_state(library: Library, records: dict[str, str]) -> dict[str, Any]:
    repo = library.service.repo
    return {k: await repo.get_entry_raw(v) for k, v in records.items() if k != "open"}


async def test_every_library_route_from_another_county_answers_404_or_403_and_changes_nothing(
    library: Library, unique: str
) -> None:
    assert_covered(library.client._transport.app, LIBRARY_ATTACKS, LIBRARY_NO_RECORD_ID)  # type: ignore[attr-defined]
    records: dict[str, str] = {}
    for name in ("nominated", "published"):
        case_id = new_case_id()
        await library.send(
            topics.LIBRARY_NOMINATIONS,
            nomination(case_id, people(unique + name), protector=library.protector()),
        )
        records[name] = (await library.entry(case_id)).id
    bureau = library.headers(Role.BUREAU)
    done = await library.client.post(f"/api/v1/entries/{records['published']}/publish", headers=bureau)
    assert done.status_code == 200, done.text
    records["open"] = new_case_id()
    await library.send(topics.CASES, registered(records["open"]))
    await eventually(lambda: library.service.repo.get_open_case(records["open"]))
    before = await library_state(library, records)
    strangers = [library.headers(role, [OTHER_COUNTY]) for role in (Role.BUREAU, Role.CENTER, Role.MEDIATOR)]
    # A mediator of the county who did not nominate the case: unpublished entries are the
    # nominator's and the reviewers' only.
    other = dev_token(library.settings, subject="sc-another-mediator", role=Role.MEDIATOR, counties=[COUNTY])
    strangers.append({"Authorization": "Bearer " + other})
    for stranger in strangers:
        for key, call in sorted(LIBRARY_ATTACKS.items()):
            if key[1] == "/api/v1/suggestions" and stranger is strangers[-1]:
                continue  # the county's own open case: its mediators may ask for suggestions
            method, url, kwargs = call(records)
            response = await library.client.request(method, url, headers=stranger, **kwargs)
            assert response.status_code in (403, 404), (
                f"{method} {url}: {response.status_code} {response.text}"
            )
            assert await library_state(library, records) == before, f"{method} {url} changed something"
        listed = await library.client.get("/api/v1/entries", params={"county": COUNTY}, headers=stranger)
        assert listed.status_code == 200 and not {e["id"] for e in listed.json()} & set(records.values())
    # What stays open by design: the published entry, without the county's internals.
    read = await library.client.get(f"/api/v1/entries/{records['published']}", headers=strangers[0])
    assert read.status_code == 200 and read.json()["case_id"] is None and read.json()["history"] == []
