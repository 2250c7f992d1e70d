"""The part of the Linyi demo registry the browser tests need: 兰山区 and 罗庄区, their
centres, industry committees and township committees, with the mediator the console's
demo account "mediator.lanshan" stands for as the only one at 兰山街道."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from devkit.tokens import token as dev_token
from tiaojie.contracts.common import Role
from tiaojie.infra.demo import demo_registry
from tiaojie.runtime.divisions import load_divisions
from tiaojie.runtime.settings import RuntimeSettings

COUNTIES = ("371302", "371311")
LANSHAN_STREET = "371302001"
MEDIATOR = "med-371302001-tc-1"  # linked to the console's demo account mediator.lanshan


def registry_subset(settings: RuntimeSettings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    orgs, mediators = demo_registry(load_divisions(str(settings.divisions_path)))
    kept_orgs = [o for o in orgs if o["county"] in COUNTIES and o["level"] != "city"]
    for org in kept_orgs:
        if org.get("parent_id") == "org-3713-centre":
            org.pop("parent_id")
    kept = [
        m
        for m in mediators
        if m["county"] in COUNTIES
        and not (m["organisation_ids"] == [f"org-{LANSHAN_STREET}-tc"] and m["id"] != MEDIATOR)
    ]
    return kept_orgs, kept


async def load_registry_subset(registry_url: str, settings: RuntimeSettings) -> None:
    orgs, mediators = registry_subset(settings)
    token = dev_token(
        settings, subject="browser-tests", role=Role.ADMIN, counties=list(COUNTIES), audience="registry"
    )
    async with httpx.AsyncClient(
        base_url=registry_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as client:
        limit = asyncio.Semaphore(4)

        async def post(path: str, body: dict[str, Any]) -> None:
            async with limit:
                response = await client.post(path, json=body)
                assert response.status_code < 300, f"{path} {body.get('id')}: {response.text[:300]}"

        centres = [o for o in orgs if o["kind"] == "centre"]
        await asyncio.gather(*(post("/api/v1/organisations", o) for o in centres))
        await asyncio.gather(*(post("/api/v1/organisations", o) for o in orgs if o["kind"] != "centre"))
        await asyncio.gather(*(post("/api/v1/mediators", m) for m in mediators))


def refer_from_a_court(referral_url: str, settings: RuntimeSettings, *, agency_ref: str) -> str:
    """兰山区人民法院 registers and refers a pre-filing dispute (委派) over HTTP; returns its id."""
    admin = dev_token(
        settings, subject="browser-tests", role=Role.ADMIN, counties=list(COUNTIES), audience="referral"
    )
    court = dev_token(
        settings,
        subject="court-lanshan",
        role=Role.AGENCY,
        counties=[COUNTIES[0]],
        agency_id="court-lanshan",
        audience="referral",
    )
    with httpx.Client(base_url=referral_url, timeout=60) as client:
        agency = {"id": "court-lanshan", "kind": "court", "county": COUNTIES[0], "name": "兰山区人民法院"}
        registered = client.post(
            "/api/v1/agencies", json=agency, headers={"Authorization": f"Bearer {admin}"}
        )
        assert registered.status_code in (200, 201), registered.text
        body = {
            "agency_ref": agency_ref,
            "referral_kind": "delegation",
            "submission": {
                "channel": "referral",
                "county": COUNTIES[0],
                "township": LANSHAN_STREET,
                "category": "contract",
                "description": "买卖合同纠纷：被告拖欠货款三万元，双方同意诉前调解。",
                "applicants": [{"name": "某建材商行", "kind": "organisation"}],
                "respondents": [{"name": "某装饰工程有限公司", "kind": "organisation"}],
                "amount": 30000,
            },
        }
        referred = client.post("/api/v1/referrals", json=body, headers={"Authorization": f"Bearer {court}"})
        assert referred.status_code in (200, 201), referred.text
        return str(referred.json()["id"])
