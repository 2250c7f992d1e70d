"""A citizen's online application followed to the archive across the running mesh:
web submission -> desk accepts -> the registry assigns -> the mediator mediates,
records the written agreement, its performance and the follow-up -> archived; every
lifecycle event is on Kafka and every figure shows in stats."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devkit.mesh import Mesh
from tests.support.data import COUNTY, auth, small_registry, submission
from tests.support.kafka import eventually, read_all
from tiaojie.contracts import topics
from tiaojie.contracts.common import Role
from tiaojie.contracts.envelope import decode_event
from tiaojie.infra import synthetic
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.e2e

TOWNSHIP = "371302004"  # 柳青街道: a township no other end-to-end test uses
COMMITTEE = f"org-{TOWNSHIP}-tc"
LIFECYCLE = [
    "CaseRegistered",
    "CaseAccepted",
    "CaseAssignmentRecorded",
    "SessionRecorded",
    "CaseResolved",
    "AgreementPerformed",
    "FollowUpRecorded",
    "CaseArchived",
]


async def load_committee(client: httpx.AsyncClient, registry: str, settings: RuntimeSettings) -> None:
    """The county centre and this township's committee with two certified mediators of
    their own (ID numbers unique to this test: the registry refuses a number twice)."""
    orgs, mediators = small_registry(COUNTY, TOWNSHIP)
    headers = auth(settings, Role.ADMIN, [COUNTY])
    for org in orgs:
        (await client.post(f"{registry}/api/v1/organisations", json=org, headers=headers)).raise_for_status()
    rng = random.Random(uuid.uuid4().hex)
    for mediator in (m for m in mediators if m["organisation_ids"] == [COMMITTEE]):
        mediator = {
            **mediator,
            "id_number": synthetic.id_number(rng, COUNTY),
            "certificate_number": f"E2E{rng.randrange(10**8)}",
        }
        (await client.post(f"{registry}/api/v1/mediators", json=mediator, headers=headers)).raise_for_status()


async def summary(client: httpx.AsyncClient, mesh: Mesh, settings: RuntimeSettings) -> dict[str, Any]:
    response = await client.get(
        f"{mesh.url('stats')}/api/v1/summary",
        params={"county": COUNTY, "township": TOWNSHIP, "category": "tourism"},
        headers=auth(settings, Role.BUREAU),
    )
    response.raise_for_status()
    return response.json()


async def metric(client: httpx.AsyncClient, url: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in (await client.get(f"{url}/metrics")).text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_web_application_to_archive(mesh: Mesh, settings: RuntimeSettings) -> None:
    intake, stats = mesh.url("intake"), mesh.url("stats")
    desk = auth(settings, Role.DESK)
    async with httpx.AsyncClient(timeout=30) as client:
        await load_committee(client, mesh.url("registry"), settings)
        concluded_before = await metric(
            client, stats, "tiaojie_cases_concluded_total", county=COUNTY, outcome="resolved"
        )
        before = await summary(client, mesh, settings)

        # 1. A citizen applies online, without an account, and keeps the tracking code.
        body = submission(31, township=TOWNSHIP, channel="web")
        body.pop("category")
        body["description"] = (
            "参加旅行社组织的旅游团，导游强制购物，行程被擅自缩短两天，要求旅行社退还部分团费。"
        )
        receipt = await client.post(
            f"{intake}/api/v1/disputes", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
        )
        assert receipt.status_code == 201, receipt.text
        code = receipt.json()["tracking_code"]
        assert receipt.json()["organisation_name"] == "测试街道人民调解委员会"

        # 2. The desk finds the application and accepts it (受理): it gets its number.
        listed = (
            await client.get(
                f"{intake}/api/v1/disputes", params={"status": "received", "limit": 200}, headers=desk
            )
        ).json()
        case_id = next(c["id"] for c in listed if c["tracking_code"] == code)
        accepted = await client.post(f"{intake}/api/v1/disputes/{case_id}/accept", headers=desk)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["case_number"].startswith(f"({datetime.now(UTC).year})测街人调字第")

        # 3. The registry's choice of mediator is recorded (before or after acceptance).
        async def assigned() -> dict[str, Any] | None:
            case = (await client.get(f"{intake}/api/v1/disputes/{case_id}", headers=desk)).json()
            return case if case["status"] == "assigned" else None

        case = await eventually(assigned, timeout=60)
        mediator_id = case["assignment"]["mediator_id"]
        # Other tests may add mediators to this committee: its membership is what counts.
        assert case["assignment"]["organisation_id"] == COMMITTEE, case["assignment"]

        # 4. The mediator mediates and closes the file.
        me = auth(settings, Role.MEDIATOR, mediator_id=mediator_id)
        now = datetime.now(UTC)

        async def act(path: str, json: dict[str, Any] | None = None) -> dict[str, Any]:
            response = await client.post(f"{intake}/api/v1/disputes/{case_id}/{path}", json=json, headers=me)
            assert response.status_code == 200, f"{path}: {response.text}"
            return response.json()

        await act(
            "sessions",
            {
                "held_at": now.isoformat(),
                "place": "柳青街道调解室",
                "participants": ["申请人", "旅行社代表", "调解员"],
                "record": "双方陈述意见，达成初步共识",
            },
        )
        today = now.date()
        resolved = await act(
            "resolve",
            {
                "form": "written",
                "amount": 1200,
                "performance_due": (today + timedelta(days=7)).isoformat(),
                "summary": "被申请人退还申请人部分团费1200元",
                "text": "人民调解协议书……",
            },
        )
        assert resolved["status"] == "resolved"
        await act("performance", {"performed_on": today.isoformat(), "note": "已当场转账"})
        await act(
            "follow-up",
            {
                "visited_on": today.isoformat(),
                "method": "phone",
                "satisfied": True,
                "record": "申请人表示满意",
            },
        )
        for part in ("notice_of_rights", "identity_documents"):
            await act("documents", {"part": part, "title": part, "uri": f"/archive/{case_id}/{part}.pdf"})
        archived = await act("archive")
        assert archived["status"] == "archived"
        file_index = (await client.get(f"{intake}/api/v1/disputes/{case_id}/file", headers=me)).json()
        assert file_index["complete"] and file_index["missing"] == []

        # 5. The citizen sees the outcome, and nothing personal.
        tracked = (await client.get(f"{intake}/api/v1/track/{code}")).json()
        assert tracked["status_label"] == "已归档"
        assert body["applicants"][0]["name"] not in str(tracked)

        # 6. Every lifecycle event is on Kafka, once, in order.
        records = await read_all(
            settings.kafka_bootstrap, settings.topic(topics.CASES), expect=100_000, timeout=8
        )
        seen: dict[str, str] = {}
        for record in records:
            if record.key == case_id.encode():
                event = decode_event(record.value)
                seen.setdefault(event.id, event.type.rsplit(".", 1)[1])
        assert list(seen.values()) == LIFECYCLE

        # 7. Stats counted every step and timed every stage.
        async def counted() -> dict[str, Any] | None:
            figures = await summary(client, mesh, settings)
            return figures if figures["agreements_performed"] >= before["agreements_performed"] + 1 else None

        after = await eventually(counted, timeout=60)
        for name in ("received", "accepted", "assigned", "resolved", "agreements_performed"):
            assert after[name] == before[name] + 1, name
        assert after["success_rate"] == 1.0
        for stage in ("accept", "assign", "first_session", "resolve"):
            assert after[f"time_to_{stage}_seconds"], stage
        assert after["open_now"] == before["open_now"]
        concluded_after = await metric(
            client, stats, "tiaojie_cases_concluded_total", county=COUNTY, outcome="resolved"
        )
        assert concluded_after == concluded_before + 1
        assert (
            await metric(client, intake, "tiaojie_case_stage_seconds_count", stage="accept", county=COUNTY)
            >= 1
        )
