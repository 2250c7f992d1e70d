"""Writes the provisioned Grafana dashboards (infra/grafana/dashboards/*.json).

    uv run python infra/grafana/build_dashboards.py

The JSON files are committed; tests/stats/test_ops_files.py checks they are what this
script writes, that they are well-formed dashboards, and (tests/e2e/test_stats_metrics.py)
that every metric their queries name is exposed by the running services. Gauges come
from every stats replica alike, so they are aggregated with max(); counters and
histograms with sum().
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}


def panel(
    title: str,
    exprs: list[tuple[str, str]],
    *,
    kind: str = "timeseries",
    unit: str | None = None,
    description: str = "",
) -> dict[str, Any]:
    """A panel of one or more queries (expression, legend)."""
    targets = [
        {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": chr(ord("A") + i)}
        for i, (expr, legend) in enumerate(exprs)
    ]
    defaults: dict[str, Any] = {}
    if unit:
        defaults["unit"] = unit
    return {
        "title": title,
        "description": description,
        "type": kind,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {},
    }


def dashboard(
    uid: str, title: str, panels: list[dict[str, Any]], *, tags: list[str], time: str
) -> dict[str, Any]:
    placed = []
    for i, p in enumerate(panels):
        width = 24 if p["type"] == "table" else 12
        placed.append(
            {
                **p,
                "id": i + 1,
                "gridPos": {"h": 8, "w": width, "x": (i % 2) * 12 if width == 12 else 0, "y": (i // 2) * 8},
            }
        )
    return {
        "uid": uid,
        "title": title,
        "tags": ["tiaojie", *tags],
        "timezone": "Asia/Shanghai",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "1m",
        "time": {"from": f"now-{time}", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": placed,
    }


def operations() -> dict[str, Any]:
    return dashboard(
        "tiaojie-operations",
        "Tiaojie 运行监控 (operations)",
        [
            panel("服务在线 Services up", [('up{job="tiaojie"}', "{{service}} {{instance}}")], kind="stat"),
            panel(
                "消息接收速率 Messages received /s",
                [("sum by (app_name) (rate(faststream_received_messages_total[5m]))", "{{app_name}}")],
                unit="ops",
            ),
            panel(
                "处理结果 Messages processed by status /s",
                [
                    (
                        "sum by (app_name, status) (rate(faststream_received_processed_messages_total[5m]))",
                        "{{app_name}} {{status}}",
                    )
                ],
                unit="ops",
            ),
            panel(
                "处理耗时 Handling duration p95",
                [
                    (
                        "histogram_quantile(0.95, sum by (le, app_name) "
                        "(rate(faststream_received_processed_messages_duration_seconds_bucket[5m])))",
                        "{{app_name}}",
                    )
                ],
                unit="s",
            ),
            panel(
                "消费积压 Consumer lag",
                [("max by (group, topic) (tiaojie_consumer_lag_messages)", "{{group}} {{topic}}")],
                description="Messages not yet committed by each service's consumer group (read by stats).",
            ),
            panel(
                "死信队列 DLQ sizes",
                [("max by (topic) (tiaojie_dlq_messages)", "{{topic}}")],
                description="Messages held in each dead-letter topic (measured by stats).",
            ),
            panel(
                "死信原因 Dead letters by reason (1h)",
                [
                    (
                        "sum by (service, reason) (increase(tiaojie_dead_letters_total[1h]))",
                        "{{service}} {{reason}}",
                    )
                ],
            ),
            panel(
                "事件处理 Events by outcome /s",
                [
                    (
                        "sum by (service, outcome) (rate(tiaojie_events_handled_total[5m]))",
                        "{{service}} {{outcome}}",
                    )
                ],
                unit="ops",
            ),
            panel(
                "错误 Errors per service /s",
                [
                    (
                        "sum by (app_name) "
                        "(rate(faststream_received_processed_messages_exceptions_total[5m]))",
                        "{{app_name}} exceptions",
                    ),
                    (
                        "sum by (service, kind) (rate(tiaojie_handler_retries_total[5m]))",
                        "{{service}} retries ({{kind}})",
                    ),
                ],
                unit="ops",
            ),
            panel(
                "发布 Messages published /s",
                [
                    (
                        "sum by (app_name, destination) (rate(faststream_published_messages_total[5m]))",
                        "{{app_name}} → {{destination}}",
                    )
                ],
                unit="ops",
            ),
            panel(
                "数据库命令 Database commands /s",
                [
                    (
                        "sum by (service, collection, command) (rate(tiaojie_db_commands_total[5m]))",
                        "{{service}} {{collection}} {{command}}",
                    )
                ],
                unit="ops",
                description="Commands each service sends to its database, by collection (round trips).",
            ),
            panel(
                "内存 Resident memory",
                [("process_resident_memory_bytes", "{{service}} {{instance}}")],
                unit="bytes",
            ),
            panel(
                "CPU",
                [("rate(process_cpu_seconds_total[5m])", "{{service}} {{instance}}")],
                unit="percentunit",
            ),
        ],
        tags=["operations"],
        time="6h",
    )


def leadership() -> dict[str, Any]:
    return dashboard(
        "tiaojie-leadership",
        "Tiaojie 矛盾纠纷态势 (leadership)",
        [
            panel(
                "受理申请（按县区，30天） Cases received by county",
                [("sum by (county) (increase(tiaojie_cases_received_total[30d]))", "{{county}}")],
                kind="bargauge",
            ),
            panel(
                "纠纷类型（30天） Cases by category",
                [("sum by (category) (increase(tiaojie_cases_received_total[30d]))", "{{category}}")],
                kind="bargauge",
            ),
            panel(
                "在办案件 Open cases",
                [("max by (county, status) (tiaojie_cases_open)", "{{county}} {{status}}")],
            ),
            panel(
                "超期案件 Overdue cases",
                [
                    ("max by (county, stage) (tiaojie_cases_overdue)", "{{county}} {{stage}}"),
                    (
                        "max by (county, agency_kind) (tiaojie_referrals_overdue)",
                        "{{county}} 移交 {{agency_kind}}",
                    ),
                ],
            ),
            panel(
                "按时办结率 Deadlines met (30d)",
                [
                    (
                        "sum by (county, clock) "
                        '(increase(tiaojie_case_deadlines_total{outcome="on_time"}[30d]))'
                        " / sum by (county, clock) (increase(tiaojie_case_deadlines_total[30d]))",
                        "{{county}} {{clock}}",
                    )
                ],
                unit="percentunit",
            ),
            panel(
                "调结用时中位数 Median days to conclude (30d)",
                [
                    (
                        "histogram_quantile(0.5, sum by (le, county) "
                        '(rate(tiaojie_case_stage_seconds_bucket{stage="resolve"}[30d]))) / 86400',
                        "{{county}}",
                    )
                ],
                unit="d",
            ),
            panel(
                "调解成功率 Success rate (30d)",
                [
                    (
                        'sum by (county) (increase(tiaojie_cases_concluded_total{outcome="resolved"}[30d]))'
                        " / sum by (county) (increase(tiaojie_cases_concluded_total[30d]))",
                        "{{county}}",
                    )
                ],
                unit="percentunit",
            ),
            panel(
                "风险热点 Active hotspots",
                [("max by (county) (tiaojie_hotspots_active)", "{{county}}")],
                kind="stat",
            ),
            panel(
                "个案预警 Active alerts by kind",
                [("max by (county, kind) (tiaojie_alerts_active)", "{{county}} {{kind}}")],
            ),
            panel(
                "移交响应 Referral response p90",
                [
                    (
                        "histogram_quantile(0.9, sum by (le, agency_kind) "
                        "(rate(tiaojie_referral_response_seconds_bucket[30d])))",
                        "{{agency_kind}}",
                    )
                ],
                unit="s",
            ),
        ],
        tags=["leadership"],
        time="30d",
    )


DASHBOARDS = {"operations.json": operations, "leadership.json": leadership}


def render(build: Any) -> str:
    return json.dumps(build(), ensure_ascii=False, indent=2) + "\n"


def main() -> None:
    for name, build in DASHBOARDS.items():
        (HERE / "dashboards" / name).write_text(render(build), encoding="utf-8")
        print(f"wrote infra/grafana/dashboards/{name}")


if __name__ == "__main__":
    main()
