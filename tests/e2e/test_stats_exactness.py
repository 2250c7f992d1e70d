"""Stats killed (SIGKILL) in the middle of a stream and restarted: every figure equals
the ground truth, nothing counted twice or lost (the uncommitted batch is redelivered and
the projections are idempotent)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from devkit.mesh import Mesh
from tests.stats.history import T0
from tests.support.data import auth
from tests.support.kafka import eventually
from tiaojie.contracts import topics
from tiaojie.contracts.common import CaseStatus, Category, Channel, Role
from tiaojie.contracts.envelope import derived_id, new_event
from tiaojie.contracts.intake import CaseAccepted, CaseRegistered, CaseResolved
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.e2e
COUNTY = "371392"
CASES = 300


def stream() -> list[tuple[bytes, bytes]]:
    out = []
    for n in range(CASES):
        case = f"kill-{n}"
        at = T0 + timedelta(minutes=n)
        items = [
            CaseRegistered(
                case_id=case,
                channel=Channel.HOTLINE,
                county=COUNTY,
                category=Category.LABOUR,
                received_at=at,
                acceptance_due=at + timedelta(days=3),
            ),
            CaseAccepted(
                case_id=case,
                county=COUNTY,
                status=CaseStatus.ACCEPTED,
                at=at + timedelta(days=1),
                case_number=f"(2026)测人调字第{n}号",
                mediation_due=at + timedelta(days=31),
            ),
        ]
        if n % 3 == 0:
            items.append(
                CaseResolved(
                    case_id=case,
                    county=COUNTY,
                    status=CaseStatus.RESOLVED,
                    at=at + timedelta(days=5),
                    agreement_form="oral",
                )
            )
        for i, data in enumerate(items):
            event = new_event(
                data,
                source=topics.service_source("intake"),
                subject=case,
                county=COUNTY,
                id=derived_id(case, str(i)),
            )
            out.append((case.encode(), event.to_bytes()))
    return out


async def test_figures_survive_a_sigkill_mid_stream(mesh: Mesh, settings: RuntimeSettings) -> None:
    from aiokafka import AIOKafkaProducer

    from tiaojie.runtime.kafka import client_kwargs

    producer = AIOKafkaProducer(**client_kwargs(settings), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in stream():
            await producer.send(settings.topic(topics.CASES), value, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    stats = mesh.services["stats-0"]
    await asyncio.sleep(1.0)  # let it take a batch or two, then kill it mid-way
    stats.kill()
    stats.start()
    await asyncio.to_thread(stats.wait_ready)
    headers = auth(settings, Role.BUREAU, [COUNTY])
    expected = {"received": CASES, "accepted": CASES, "resolved": CASES // 3}

    async with httpx.AsyncClient(timeout=30) as client:

        async def figures() -> dict | None:
            got = (
                await client.get(f"{stats.url}/api/v1/summary", params={"county": COUNTY}, headers=headers)
            ).json()
            return got if all(got.get(k) == v for k, v in expected.items()) else None

        got = await eventually(figures, timeout=120)
    assert got["time_to_accept_seconds"] == {"count": CASES, "median": 86400.0, "p90": 86400.0}
    assert got["time_to_resolve_seconds"]["count"] == CASES // 3
