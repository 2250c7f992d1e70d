"""Every metric the Grafana dashboards and the Prometheus rules name is exposed by the
running services' /metrics (all four as separate processes)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from devkit.mesh import Mesh
from tests.stats.promql import SYNTHETIC, dashboard_exprs, family, metric_names, rule_exprs
from tests.support.data import auth, load_registry, submission
from tests.support.kafka import eventually
from tiaojie.contracts.common import Role
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.e2e


async def families(client: httpx.AsyncClient, mesh: Mesh) -> set[str]:
    names: set[str] = set()
    for process in mesh.services.values():
        text = (await client.get(f"{process.url}/metrics")).text
        names |= {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    return names


async def test_dashboards_and_rules_name_only_exposed_metrics(mesh: Mesh, settings: RuntimeSettings) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        await load_registry(client, mesh.url("registry"), settings)
        # One dispute through the mesh so every message path has run at least once.
        created = await client.post(
            f"{mesh.url('intake')}/api/v1/disputes",
            json=submission(61),
            headers={**auth(settings, Role.DESK), "Idempotency-Key": str(uuid.uuid4())},
        )
        assert created.status_code == 201, created.text
        exposed = await eventually(lambda: _with_stats_gauges(client, mesh), timeout=60)
    rules, recorded = rule_exprs()
    missing: dict[str, set[str]] = {}
    for source, exprs in [("rules", rules), *dashboard_exprs().items()]:
        for expr in exprs:
            for name in metric_names(expr) - SYNTHETIC - recorded:
                if not family(name, exposed):
                    missing.setdefault(source, set()).add(name)
    assert not missing, f"named but not exposed: {missing}"


async def _with_stats_gauges(client: httpx.AsyncClient, mesh: Mesh) -> set[str] | None:
    found = await families(client, mesh)
    wanted = {"tiaojie_cases_open", "faststream_received_messages_total", "tiaojie_events_handled_total"}
    return found if all(family(name, found) for name in wanted) else None
