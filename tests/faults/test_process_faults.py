"""Faults under load against the real servers: killed services, scaling in and out, the
database and the broker going away. Each test ends with the ledger reconciliation."""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.faults.harness import SteadyLoad, assert_exactly_once, private_mesh, reconcile, restart
from tiaojie.infra.stack import SERVICES, Infra
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]


async def test_sigkill_each_service_in_turn_under_load(fault_settings: RuntimeSettings) -> None:
    mesh, own = await private_mesh(fault_settings, "kill")
    try:
        async with SteadyLoad(own, mesh) as load:
            await asyncio.sleep(3)
            for spec in SERVICES:
                name = f"{spec.name}-0"
                mesh.services[name].kill()
                await asyncio.sleep(2)
                await asyncio.to_thread(restart, mesh, name)
                await asyncio.sleep(2)
        assert_exactly_once(await reconcile(own, mesh, load.ledger))
    finally:
        mesh.stop_all()


async def test_consumers_join_and_leave_the_group_under_load(fault_settings: RuntimeSettings) -> None:
    """Scale intake and the registry 1 -> 3 -> 1 while disputes keep arriving."""
    mesh, own = await private_mesh(fault_settings, "scale")
    try:
        async with SteadyLoad(own, mesh) as load:
            await asyncio.sleep(3)
            added = []
            for spec in SERVICES:
                if spec.name in ("intake", "registry"):
                    for replica in (1, 2):
                        process = mesh.add(spec, replica=replica)
                        process.start()
                        added.append(process)
            for process in added:
                await asyncio.to_thread(process.wait_ready)
            await asyncio.sleep(5)
            for process in added:
                process.stop(signal.SIGTERM)
                mesh.services.pop(process.name)
            await asyncio.sleep(3)
        assert_exactly_once(await reconcile(own, mesh, load.ledger))
    finally:
        mesh.stop_all()


async def test_database_stops_for_30_seconds_under_load(
    fault_settings: RuntimeSettings, fault_infra: Infra
) -> None:
    infra = fault_infra
    mesh, own = await private_mesh(fault_settings, "dbdown")
    try:
        async with SteadyLoad(own, mesh) as load:
            await asyncio.sleep(3)
            await asyncio.to_thread(infra.ferretdb.stop)
            try:
                await asyncio.sleep(30)
            finally:
                await asyncio.to_thread(infra.ferretdb.start)
                await asyncio.to_thread(infra.ferretdb.wait)
            await asyncio.sleep(5)
        result = await reconcile(own, mesh, load.ledger, timeout=240)
        assert load.ledger.failures, "the outage should have refused some HTTP submissions"
        assert_exactly_once(result)
    finally:
        mesh.stop_all()


async def test_broker_stops_and_restarts_under_load(
    fault_settings: RuntimeSettings, fault_infra: Infra
) -> None:
    infra = fault_infra
    mesh, own = await private_mesh(fault_settings, "kafkadown")
    try:
        async with SteadyLoad(own, mesh) as load:
            await asyncio.sleep(3)
            await asyncio.to_thread(infra.kafka.stop)
            try:
                await asyncio.sleep(10)
            finally:
                await asyncio.to_thread(infra.kafka.start)
                await asyncio.to_thread(infra.kafka.wait)
            await asyncio.sleep(8)
        assert_exactly_once(await reconcile(own, mesh, load.ledger, timeout=240))
    finally:
        mesh.stop_all()
