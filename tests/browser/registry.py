"""The part of the Linyi demo registry the browser tests need: 兰山区 and 罗庄区, their
centres, industry committees and township committees, with the mediator the console's
demo account "mediator.lanshan" stands for as the only one at 兰山街道."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tiaojie.contracts.common import Role
from tiaojie.infra.demo import demo_registry
from tiaojie.runtime.auth import issue_token
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
    token = issue_token(settings, subject="browser-tests", role=Role.ADMIN, counties=list(COUNTIES))
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
