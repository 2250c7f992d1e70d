"""The audit log as a bureau reads it and as an intruder would try to rewrite it: every
read of a case by a person, every reveal and every document is recorded, the bureau of
the county sees them, a bureau of another county sees nothing, and no route changes an
entry."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.intake.conftest import Intake, body, running_intake
from tests.support.data import COUNTY, OTHER_COUNTY
from tiaojie.contracts.common import Role
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.security


@pytest.fixture(scope="module")
async def intake(settings: RuntimeSettings) -> AsyncIterator[Intake]:
    async with running_intake(settings, suffix="_au") as running:
        yield running


async def registered(intake: Intake, seed: str) -> str:
    answer = await intake.client.post("/api/v1/disputes", json=body(seed), headers=intake.headers(Role.DESK))
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def audit_of(intake: Intake, role: Role, counties: list[str], **params: str) -> list[dict]:  # type: ignore[type-arg]
    answer = await intake.client.get("/api/v1/audit", params=params, headers=intake.headers(role, counties))
    assert answer.status_code == 200, answer.text
    return list(answer.json()["entries"])


async def test_reads_reveals_and_documents_are_visible_to_the_bureau_of_the_county_only(
    intake: Intake, unique: str
) -> None:
    case_id = await registered(intake, unique)
    desk = intake.headers(Role.DESK)
    assert (await intake.client.get(f"/api/v1/disputes/{case_id}", headers=desk)).status_code == 200
    revealed = await intake.client.get(
        f"/api/v1/disputes/{case_id}", params={"reveal": "true", "purpose": "联系当事人"}, headers=desk
    )
    assert revealed.status_code == 200
    document = await intake.client.post(
        f"/api/v1/disputes/{case_id}/documents",
        json={"part": "application_form", "title": "调解申请书", "uri": "/archive/a.pdf"},
        headers=desk,
    )
    assert document.status_code == 200, document.text

    entries = await audit_of(intake, Role.BUREAU, [COUNTY], case_id=case_id)
    actions = [(e["action"], e["subject"], e["role"], e["case_id"]) for e in entries]
    assert ("read", f"test-{Role.DESK}", Role.DESK, case_id) in actions
    assert ("reveal", f"test-{Role.DESK}", Role.DESK, case_id) in actions
    assert ("document", f"test-{Role.DESK}", Role.DESK, case_id) in actions
    assert any(e["purpose"] == "联系当事人" for e in entries if e["action"] == "reveal")
    assert all(e["at"] for e in entries)
    # The bureau's reads are themselves no case reads: the log shows the same afterwards.
    assert len(await audit_of(intake, Role.BUREAU, [COUNTY], case_id=case_id)) == len(entries)

    # Another county's bureau: as if the case had no audit at all.
    assert await audit_of(intake, Role.BUREAU, [OTHER_COUNTY], case_id=case_id) == []
    assert not [e for e in await audit_of(intake, Role.BUREAU, [OTHER_COUNTY]) if e["case_id"] == case_id]
    # Other roles do not read the audit log.
    denied = await intake.client.get("/api/v1/audit", params={"case_id": case_id}, headers=desk)
    assert denied.status_code == 403


async def test_the_audit_pages_with_a_bounded_limit_and_a_cursor(intake: Intake, unique: str) -> None:
    case_id = await registered(intake, unique)
    desk = intake.headers(Role.DESK)
    for _ in range(3):
        await intake.client.get(f"/api/v1/disputes/{case_id}", headers=desk)
    bureau = intake.headers(Role.BUREAU, [COUNTY])
    first = (
        await intake.client.get("/api/v1/audit", params={"case_id": case_id, "limit": 2}, headers=bureau)
    ).json()
    assert len(first["entries"]) == 2 and first["next_cursor"]
    rest = (
        await intake.client.get(
            "/api/v1/audit",
            params={"case_id": case_id, "limit": 2, "cursor": first["next_cursor"]},
            headers=bureau,
        )
    ).json()
    assert len(rest["entries"]) == 1 and rest["next_cursor"] is None
    too_many = await intake.client.get("/api/v1/audit", params={"limit": 201}, headers=bureau)
    assert too_many.status_code == 422


async def test_no_route_changes_or_removes_an_audit_entry(intake: Intake, unique: str) -> None:
    case_id = await registered(intake, unique)
    await intake.client.get(f"/api/v1/disputes/{case_id}", headers=intake.headers(Role.DESK))
    before = await audit_of(intake, Role.ADMIN, [COUNTY], case_id=case_id)
    assert before
    admin = intake.headers(Role.ADMIN, [COUNTY])
    for path in ("/api/v1/audit", f"/api/v1/audit/{case_id}", "/api/v1/audit/entries"):
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            answer = await intake.client.request(
                method, path, json={"case_id": case_id, "action": "x"}, headers=admin
            )
            assert answer.status_code in (404, 405), (method, path, answer.status_code)
    # The route table (as the OpenAPI document lists it) has one audit route, which reads.
    paths = intake.app.openapi()["paths"]
    audit_routes = {path: sorted(ops) for path, ops in paths.items() if "audit" in path}
    assert audit_routes == {"/api/v1/audit": ["get"]}
    assert await audit_of(intake, Role.ADMIN, [COUNTY], case_id=case_id) == before
