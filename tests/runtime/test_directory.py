"""The organisation directory: the routing rule every service applies, and the projection
that never moves back to an older version of an organisation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from tiaojie.contracts.common import Category, DivisionLevel, OrganisationKind, RiskLevel
from tiaojie.contracts.registry import OrganisationUpdated
from tiaojie.runtime import directory
from tiaojie.runtime.directory import Directory, Organisation
from tiaojie.runtime.mongo import ensure_indexes

COUNTY = "371302"
TOWNSHIP = "371302001"


def org(
    org_id: str,
    kind: str,
    level: str,
    division: str,
    categories: list[str] | None = None,
    active: bool = True,
    county: str = COUNTY,
) -> Organisation:
    return Organisation.model_validate(
        {
            "_id": org_id,
            "name": org_id,
            "short_name": org_id[:2],
            "kind": kind,
            "level": level,
            "county": county,
            "division_code": division,
            "categories": categories or [],
            "active": active,
        }
    )


CENTRE = org("centre", "centre", "county", COUNTY)
COMMITTEE = org("committee", "township_committee", "township", TOWNSHIP)
MEDICAL = org("medical", "industry_committee", "county", COUNTY, ["medical"])


def routed(
    category: Category = Category.NEIGHBOURHOOD,
    risk_level: RiskLevel = RiskLevel.ORDINARY,
    cross: bool = False,
    township: str | None = TOWNSHIP,
    orgs: list[Organisation] | None = None,
) -> str | None:
    r = directory.route(
        county=COUNTY,
        township=township,
        category=category,
        risk_level=risk_level,
        cross_county=cross,
        in_county=orgs if orgs is not None else [CENTRE, COMMITTEE, MEDICAL],
    )
    return r.organisation.id if r.organisation else None


@pytest.mark.unit
def test_routing_rule() -> None:
    assert routed() == "committee"
    assert routed(Category.MEDICAL) == "medical"  # the industry committee wins
    assert routed(Category.MEDICAL, risk_level=RiskLevel.GRAVE) == "centre"
    assert routed(cross=True) == "centre"
    assert routed(township=None) == "centre"
    inactive = org("committee", "township_committee", "township", TOWNSHIP, active=False)
    assert routed(orgs=[CENTRE, inactive]) == "centre"
    assert routed(orgs=[COMMITTEE]) == "committee"  # no centre: grave still goes somewhere local
    assert routed(risk_level=RiskLevel.GRAVE, orgs=[COMMITTEE]) == "committee"
    assert routed(orgs=[]) is None
    # Another county's organisations never receive the dispute.
    elsewhere = org("other", "township_committee", "township", TOWNSHIP, county="371311")
    assert routed(orgs=[elsewhere]) is None


@pytest.mark.unit
def test_centre_and_committee_ties_go_to_the_lowest_id() -> None:
    second = org("a-centre", "centre", "county", COUNTY)
    assert directory.county_centre([CENTRE, second]) is second
    township_centre = org("t-centre", "centre", "township", TOWNSHIP)
    assert directory.county_centre([township_centre]) is None
    assert directory.county_centre([CENTRE], county="371311") is None
    assert directory.township_committee([COMMITTEE], township=TOWNSHIP + "201") is COMMITTEE


def updated(version: int, *, name: str = "兰山区调解中心", active: bool = True) -> OrganisationUpdated:
    return OrganisationUpdated(
        organisation_id="org-1",
        version=version,
        name=name,
        short_name="临兰",
        kind=OrganisationKind.CENTRE,
        level=DivisionLevel.COUNTY,
        county=COUNTY,
        division_code=COUNTY,
        active=active,
    )


@pytest.mark.integration
async def test_concurrent_versions_leave_the_newest(db: AsyncDatabase[dict[str, Any]]) -> None:
    # Two replicas projecting versions 1..12 at once, in any order: the newest stays.
    first, second = Directory(db), Directory(db)
    await ensure_indexes(db, first.indexes)
    versions = list(range(1, 13))
    await asyncio.gather(
        *(first.project(updated(v, name=f"v{v}")) for v in versions),
        *(second.project(updated(v, name=f"v{v}")) for v in reversed(versions)),
    )
    now = await first.get("org-1")
    assert now is not None and now.source_version == 12 and now.name == "v12"
    # A redelivered older snapshot changes nothing.
    assert await second.project(updated(3, name="v3")) is False
    assert (await second.get("org-1")) == now
    assert [o.id for o in await first.in_county(COUNTY)] == ["org-1"]


@pytest.mark.integration
async def test_a_projection_from_before_the_engine_continues(db: AsyncDatabase[dict[str, Any]]) -> None:
    # Stored by the old versioned upsert: the registry's version in `version`, no log.
    await db["organisations"].insert_one(
        {**updated(5).model_dump(mode="json", exclude={"organisation_id"}), "_id": "org-1"}
    )
    projection = Directory(db)
    await ensure_indexes(db, projection.indexes)
    assert await projection.project(updated(4, name="old")) is False
    assert await projection.project(updated(6, name="new", active=False)) is True
    now = await projection.get("org-1")
    assert now is not None and now.name == "new" and not now.active and now.source_version == 6
