"""The foundation's flow across all four services running as separate processes:
HTTP submission -> CaseRegistered -> registry proposes -> intake shows it -> stats counts
-> the desk accepts -> the case is assigned -> stats times the assignment;
and a malformed event from a plain Kafka client lands in the DLQ while the next is handled."""

from __future__ import annotations

import uuid

import httpx
import pytest

from devkit.mesh import Mesh
from tests.support.data import COUNTY, auth, load_registry, submission
from tests.support.kafka import eventually, produce, read_all
from tiaojie.contracts import topics
from tiaojie.contracts.common import Role
from tiaojie.contracts.envelope import decode_event, new_event
from tiaojie.contracts.intake import DisputeSubmission, DisputeSubmitted
from tiaojie.intake.service import case_id_for
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def registry_loaded(mesh: Mesh, settings: RuntimeSettings) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        await load_registry(client, mesh.url("registry"), settings)


async def metric(client: httpx.AsyncClient, url: str, name: str, **labels: str) -> float:
    text = (await client.get(f"{url}/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_http_submission_is_registered_assigned_and_counted(
    mesh: Mesh, settings: RuntimeSettings, registry_loaded: None
) -> None:
    desk = auth(settings, Role.DESK)
    async with httpx.AsyncClient(timeout=30) as client:
        before = await metric(client, mesh.url("stats"), "tiaojie_cases_received_total", county=COUNTY)
        body = submission(11)
        created = await client.post(
            f"{mesh.url('intake')}/api/v1/disputes",
            json=body,
            headers={**desk, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert created.status_code == 201, created.text
        case = created.json()
        assert case["organisation_id"] == "org-371302001-tc"

        async def assigned() -> dict | None:
            got = (
                await client.get(f"{mesh.url('intake')}/api/v1/disputes/{case['id']}", headers=desk)
            ).json()
            return got if got.get("assignment") else None

        shown = await eventually(assigned)
        assert shown["assignment"]["mediator_id"].startswith("med-org-371302001-tc-")
        assert shown["assignment"]["mediator_name"]
        await eventually(lambda: _counted(client, mesh, before))
        # The registry proposed a mediator at registration; the case is assigned when it is
        # accepted (登记 → 受理 → 指派), and that is when stats times the assignment.
        stage = {"stage": "assign", "county": COUNTY}
        timed = await metric(client, mesh.url("stats"), "tiaojie_case_stage_seconds_count", **stage)
        accepted = await client.post(
            f"{mesh.url('intake')}/api/v1/disputes/{case['id']}/accept", headers=desk
        )
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["status"] == "assigned"

        async def assignment_timed() -> bool:
            now = await metric(client, mesh.url("stats"), "tiaojie_case_stage_seconds_count", **stage)
            return now >= timed + 1

        await eventually(assignment_timed)


async def _counted(client: httpx.AsyncClient, mesh: Mesh, before: float) -> bool:
    return (
        await metric(client, mesh.url("stats"), "tiaojie_cases_received_total", county=COUNTY) >= before + 1
    )


async def test_retried_post_with_the_same_key_returns_the_same_case(
    mesh: Mesh, settings: RuntimeSettings, registry_loaded: None
) -> None:
    desk = {**auth(settings, Role.DESK), "Idempotency-Key": "retry-" + uuid.uuid4().hex}
    async with httpx.AsyncClient(timeout=30) as client:
        first = await client.post(f"{mesh.url('intake')}/api/v1/disputes", json=submission(12), headers=desk)
        second = await client.post(f"{mesh.url('intake')}/api/v1/disputes", json=submission(12), headers=desk)
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"] and second.json()["duplicate"] is True


async def test_other_county_case_is_404(mesh: Mesh, settings: RuntimeSettings, registry_loaded: None) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        created = await client.post(
            f"{mesh.url('intake')}/api/v1/disputes", json=submission(13), headers=auth(settings, Role.DESK)
        )
        other = auth(settings, Role.BUREAU, ["371311"])
        response = await client.get(
            f"{mesh.url('intake')}/api/v1/disputes/{created.json()['id']}", headers=other
        )
    assert response.status_code == 404


async def test_malformed_submission_event_goes_to_dlq_and_next_is_handled(
    mesh: Mesh, settings: RuntimeSettings, registry_loaded: None
) -> None:
    good = new_event(
        DisputeSubmitted(submission=DisputeSubmission.model_validate(submission(14, channel="system"))),
        source="/grid/lanshan",
        subject="grid-42",
        county=COUNTY,
    )
    invalid = good.model_copy(update={"id": str(uuid.uuid4()), "data": {"submission": {"county": "1"}}})
    physical = settings.topic(topics.SUBMISSIONS)
    await produce(
        settings.kafka_bootstrap,
        physical,
        [b"\x00 not an event", invalid.to_bytes(), good.to_bytes()],
        key=b"grid-42",
    )
    dead = await read_all(settings.kafka_bootstrap, settings.topic(topics.dlq(topics.SUBMISSIONS)), expect=2)
    reasons = [dict(r.headers)["x-tiaojie-reason"] for r in dead]
    assert reasons == [b"malformed_envelope", b"invalid_payload"]
    assert b"submission.county" in dict(dead[1].headers)["x-tiaojie-error"]
    events = await read_all(settings.kafka_bootstrap, settings.topic(topics.CASES), expect=100, timeout=5)
    # The good event made exactly one case: one CaseRegistered event (by id: delivery to
    # consumers is at least once, so a record may repeat after a crash, never a new id).
    case_id = case_id_for(scope=f"kafka:{good.source}", key=good.id)
    registered = {
        e.id
        for e in (decode_event(r.value) for r in events)
        if e.type.endswith("CaseRegistered") and (e.data or {}).get("case_id") == case_id
    }
    assert len(registered) == 1
