"""Prometheus rules and config validated by promtool; Grafana dashboards well-formed and
up to date with their generator."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.stats.promql import DASHBOARDS, ROOT, dashboard_exprs, metric_names, rule_exprs

pytestmark = pytest.mark.unit
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (./dev installs it)")
PANEL_TYPES = {"timeseries", "stat", "bargauge", "table", "gauge", "piechart", "text"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=ROOT / "infra" / "prometheus", capture_output=True, text=True, check=False
    )


@needs_promtool
def test_rule_files_pass_promtool_check() -> None:
    result = promtool("check", "rules", "rules/tiaojie.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_alert_rules_fire_as_their_unit_tests_expect() -> None:
    result = promtool("test", "rules", "tests/tiaojie_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.docker.yml"])
def test_prometheus_configs_are_valid(config: str) -> None:
    result = promtool("check", "config", "--syntax-only", config)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboards_are_well_formed_grafana_json() -> None:
    files = sorted(DASHBOARDS.glob("*.json"))
    assert {f.name for f in files} >= {"operations.json", "leadership.json"}
    uids = set()
    for path in files:
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert doc["uid"] not in uids and doc["title"] and isinstance(doc["schemaVersion"], int)
        uids.add(doc["uid"])
        ids = [p["id"] for p in doc["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        for p in doc["panels"]:
            assert p["type"] in PANEL_TYPES, p["title"]
            grid = p["gridPos"]
            assert all(isinstance(grid[k], int) for k in "xywh") and grid["x"] + grid["w"] <= 24
            assert p["targets"], p["title"]
            for target in p["targets"]:
                assert target["datasource"]["uid"] == "prometheus" and target["refId"] and target["expr"]


def test_dashboards_are_what_the_generator_writes() -> None:
    sys.path.insert(0, str(ROOT / "infra" / "grafana"))
    try:
        import build_dashboards
    finally:
        sys.path.pop(0)
    for name, build in build_dashboards.DASHBOARDS.items():
        assert (DASHBOARDS / name).read_text(encoding="utf-8") == build_dashboards.render(build), name


def test_every_query_names_metrics() -> None:
    exprs, recorded = rule_exprs()
    assert recorded == {"tiaojie:cases_overdue:max"}
    for expr in [*exprs, *(e for es in dashboard_exprs().values() for e in es)]:
        assert metric_names(expr), expr
    assert metric_names('max by (county) (tiaojie_hotspots_active{kind="x"}[5m]) > 0') == {
        "tiaojie_hotspots_active"
    }
    assert metric_names("histogram_quantile(0.9, sum by (le) (rate(a_bucket[5m]))) / 86400") == {"a_bucket"}
    assert metric_names("x:y >= 5 and x:y > (x:y offset 1d)") == {"x:y"}
