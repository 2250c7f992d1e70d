"""Faults under load against the real servers: killed services, scaling in and out, the
database and the broker going away. Each test ends with the ledger reconciliation, which
covers every input acknowledged since the fault tier's mesh started."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from tests.faults.harness import FaultMesh, SteadyLoad, assert_exactly_once
from tiaojie.infra.stack import SERVICES, Infra

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]


async def test_sigkill_each_service_in_turn_under_load(fault_mesh: FaultMesh) -> None:
    """Every service is SIGKILLed in turn and started again at once; a service may be
    killed while the previous one is still starting (harsher than one at a time)."""
    fm = fault_mesh
    async with fm.load():
        await asyncio.sleep(3)
        restarted = []
        for spec in SERVICES:
            process = fm.mesh.services[f"{spec.name}-0"]
            process.kill()
            await asyncio.sleep(1)
            process.start()
            restarted.append(process)
            await asyncio.sleep(3)
        for process in restarted:
            await asyncio.to_thread(process.wait_ready)
        await asyncio.sleep(3)
    assert_exactly_once(await fm.reconciled(timeout=240))


async def test_consumers_join_and_leave_the_group_under_load(fault_mesh: FaultMesh) -> None:
    """Scale intake and the registry 1 -> 3 -> 1 while disputes keep arriving."""
    fm = fault_mesh
    async with fm.load():
        await asyncio.sleep(3)
        added = []
        for spec in SERVICES:
            if spec.name in ("intake", "registry"):
                for replica in (1, 2):
                    process = fm.mesh.add(spec, replica=replica)
                    process.start()
                    added.append(process)
        for process in added:
            await asyncio.to_thread(process.wait_ready)
        await asyncio.sleep(5)
        for process in added:
            process.stop(signal.SIGTERM)
            fm.mesh.services.pop(process.name)
        await asyncio.sleep(3)
    assert_exactly_once(await fm.reconciled())


async def outage(server: Any, *, seconds: float) -> None:
    """Stop one of the fault tier's servers for a while, then start it and wait for it."""
    await asyncio.to_thread(server.stop)
    try:
        await asyncio.sleep(seconds)
    finally:
        await asyncio.to_thread(server.start)
        await asyncio.to_thread(server.wait)


async def test_database_stops_for_30_seconds_under_load(fault_mesh: FaultMesh, fault_infra: Infra) -> None:
    fm = fault_mesh
    failures_before = sum(fm.ledger.failures.values())
    async with fm.load():
        await asyncio.sleep(3)
        await outage(fault_infra.ferretdb, seconds=30)
        await asyncio.sleep(5)
    result = await fm.reconciled(timeout=240)
    assert sum(fm.ledger.failures.values()) > failures_before, "the outage should have refused some"
    assert_exactly_once(result)


async def test_broker_stops_and_restarts_under_load(fault_mesh: FaultMesh, fault_infra: Infra) -> None:
    fm = fault_mesh
    async with fm.load():
        await asyncio.sleep(3)
        await outage(fault_infra.kafka, seconds=10)
        await asyncio.sleep(8)
    assert_exactly_once(await fm.reconciled(timeout=240))


async def test_sigkill_intake_in_the_middle_of_a_batch_write(fault_mesh: FaultMesh) -> None:
    """Intake is killed at the moment the database holds a revision it claimed but had not
    settled (snapshot, publication or settlement still to come) while batches of Kafka
    submissions arrive; its successor, or a later writer, rolls the revision forward."""
    fm = fault_mesh
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(fm.settings.mongo_url, tz_aware=True)
    revisions = client[fm.settings.database("tiaojie_intake")]["case_revisions"]
    caught: list[str] = []
    try:
        fm.ensure_running()
        async with SteadyLoad(fm.settings, fm.mesh, ledger=fm.ledger, rate=40):
            process = fm.mesh.services["intake-0"]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                unsettled = await revisions.find_one({"applied": False}, {"_id": 1})
                if unsettled is not None:
                    process.kill()
                    caught.append(str(unsettled["_id"]))
                    break
                await asyncio.sleep(0.005)
            await asyncio.sleep(2)
            process.start()
            await asyncio.to_thread(process.wait_ready)
            await asyncio.sleep(3)
    finally:
        await client.close()
    assert caught, "intake was never caught between a claim and its settlement"
    assert_exactly_once(await fm.reconciled(timeout=240))
