"""Small registries and submissions for tests."""

from __future__ import annotations

import random
from typing import Any

import httpx

from devkit.tokens import token as dev_token
from tiaojie.contracts.common import Role
from tiaojie.infra import synthetic
from tiaojie.runtime.settings import RuntimeSettings

COUNTY = "371302"  # 兰山区
TOWNSHIP = "371302001"  # 兰山街道
OTHER_COUNTY = "371311"  # 罗庄区


def token(settings: RuntimeSettings, role: Role, counties: list[str] | None = None, **claims: Any) -> str:
    """A development token of this role (for every service unless `audience=` names one)."""
    return dev_token(settings, subject=f"test-{role}", role=role, counties=counties or [COUNTY], **claims)


def auth(
    settings: RuntimeSettings, role: Role, counties: list[str] | None = None, **claims: Any
) -> dict[str, str]:
    return {"Authorization": "Bearer " + token(settings, role, counties, **claims)}


def small_registry(
    county: str = COUNTY, township: str = TOWNSHIP, *, capacity: int | None = None, per_org: int = 2
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A county centre, one township committee, and `per_org` certified mediators in each."""
    centre, committee = f"org-{county}-centre", f"org-{township}-tc"
    orgs = [
        {
            "id": centre,
            "name": "测试县矛盾纠纷多元化解中心",
            "short_name": "测",
            "kind": "centre",
            "level": "county",
            "county": county,
            "division_code": county,
        },
        {
            "id": committee,
            "name": "测试街道人民调解委员会",
            "short_name": "测街",
            "kind": "township_committee",
            "level": "township",
            "county": county,
            "division_code": township,
            "parent_id": centre,
        },
    ]
    rng = random.Random(7)
    mediators = [
        {
            "id": f"med-{org}-{i}",
            "name": synthetic.person_name(rng),
            "id_number": synthetic.id_number(rng, county),
            "county": county,
            "organisation_ids": [org],
            "full_time": True,
            "grade": "2",
            "certificate_number": f"T{i}{org[-6:]}",
            "certificate_expires_on": "2030-12-31",
            **({"capacity": capacity} if capacity is not None else {}),
        }
        for org in (centre, committee)
        for i in range(1, per_org + 1)
    ]
    return orgs, mediators


async def load_registry(
    client: httpx.AsyncClient,
    registry_url: str,
    settings: RuntimeSettings,
    county: str = COUNTY,
    township: str = TOWNSHIP,
    *,
    capacity: int | None = None,
    per_org: int = 2,
) -> None:
    orgs, mediators = small_registry(county, township, capacity=capacity, per_org=per_org)
    headers = auth(settings, Role.ADMIN, [county])
    for body in orgs:
        (
            await client.post(f"{registry_url}/api/v1/organisations", json=body, headers=headers)
        ).raise_for_status()
    for body in mediators:
        (await client.post(f"{registry_url}/api/v1/mediators", json=body, headers=headers)).raise_for_status()


def submission(
    seed: int = 1, *, county: str = COUNTY, township: str | None = TOWNSHIP, **overrides: Any
) -> dict[str, Any]:
    body = synthetic.submission(random.Random(seed), county=county, township=township)
    return {**body, **overrides}
