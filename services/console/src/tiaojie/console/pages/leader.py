"""Leadership: the stats summary with charts (Apache ECharts), timeliness, success rates,
active hotspots, the 4-week forecast and the monthly report."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from tiaojie.console.models import SessionDoc
from tiaojie.console.upstream import UpstreamError
from tiaojie.console.web import CHINA, caller_of, render, require, web_of
from tiaojie.contracts.common import CATEGORY_LABELS, Category, Role

router = APIRouter()
Leader = Annotated[SessionDoc, Depends(require(Role.BUREAU, Role.CENTER, Role.ADMIN))]
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
AGENCY_LABELS = {
    "court": "法院",
    "police": "公安",
    "petition": "信访",
    "hotline": "12345热线",
    "government": "政府部门",
    "internal": "调解组织间",
}
STAGE_LABELS = {"accept": "受理", "assign": "指派", "first_session": "首次调解", "resolve": "调结"}
ALERT_KINDS = {"hotspot": "风险热点", "grave_risk": "重大风险案件", "repeat_dispute": "重复纠纷"}


def _days(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds >= 86400:
        return f"{seconds / 86400:.1f}天"
    return f"{seconds / 3600:.1f}小时" if seconds >= 3600 else f"{max(1, round(seconds / 60))}分钟"


def _category(code: str) -> str:
    return CATEGORY_LABELS[Category(code)] if code in Category._value2member_map_ else code


def county_chart(rows: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Grouped bars: received, resolved and failed per county."""
    names = [name for name, _ in rows]
    series = [
        {"name": label, "type": "bar", "data": [s.get(key, 0) for _, s in rows]}
        for key, label in (("received", "受理申请"), ("resolved", "调解成功"), ("failed", "调解不成"))
    ]
    return {
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0},
        "grid": {"left": 40, "right": 10, "bottom": 60, "top": 40},
        "xAxis": {"type": "category", "data": names, "axisLabel": {"rotate": 30}},
        "yAxis": {"type": "value", "minInterval": 1},
        "series": series,
    }


def outcome_chart(summary: dict[str, Any]) -> dict[str, Any]:
    """Where the cases stand: a pie of outcomes so far."""
    parts = [
        ("调解成功", summary.get("resolved", 0)),
        ("调解不成", summary.get("failed", 0)),
        ("不予受理", summary.get("rejected", 0)),
        ("撤回", summary.get("withdrawn", 0)),
        ("在办", summary.get("open_now", 0)),
    ]
    return {
        "tooltip": {"trigger": "item"},
        "legend": {"bottom": 0},
        "series": [
            {
                "type": "pie",
                "radius": ["35%", "65%"],
                "data": [{"name": n, "value": v} for n, v in parts if v],
                "label": {"formatter": "{b}: {c}"},
            }
        ],
    }


def timeliness_chart(summary: dict[str, Any]) -> dict[str, Any]:
    t = summary.get("timeliness") or {}
    return {
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0},
        "grid": {"left": 70, "right": 10, "bottom": 30, "top": 40},
        "xAxis": {"type": "value", "minInterval": 1},
        "yAxis": {"type": "category", "data": ["受理（3日内）", "调结（30日内）"]},
        "series": [
            {
                "name": "按期",
                "type": "bar",
                "stack": "t",
                "data": [t.get("accepted_on_time", 0), t.get("concluded_on_time", 0)],
            },
            {
                "name": "超期",
                "type": "bar",
                "stack": "t",
                "data": [t.get("accepted_late", 0), t.get("concluded_late", 0)],
            },
        ],
    }


def forecast_rows(forecasts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Weekly totals over counties and categories (means add; bounds are shown per week
    as the sum of the parts' bounds, a conservative envelope)."""
    weeks: dict[str, dict[str, Any]] = {}
    for county in forecasts:
        for category in county.get("categories", []):
            for w in category.get("weeks", []):
                row = weeks.setdefault(
                    w["week_start"],
                    {
                        "week_start": w["week_start"],
                        "week_end": w.get("week_end"),
                        "mean": 0.0,
                        "lower": 0,
                        "upper": 0,
                    },
                )
                row["mean"] += float(w.get("mean", 0))
                row["lower"] += int(w.get("lower_80", 0))
                row["upper"] += int(w.get("upper_80", 0))
    return [weeks[k] for k in sorted(weeks)]


def forecast_chart(rows: list[dict[str, Any]]) -> dict[str, Any]:
    labels = [f"{r['week_start'][5:]}起" for r in rows]
    return {
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0},
        "grid": {"left": 40, "right": 10, "bottom": 30, "top": 40},
        "xAxis": {"type": "category", "data": labels},
        "yAxis": {"type": "value", "minInterval": 1},
        "series": [
            {
                "name": "80%区间下限",
                "type": "line",
                "data": [r["lower"] for r in rows],
                "lineStyle": {"type": "dashed"},
            },
            {"name": "预计受理量", "type": "line", "data": [round(r["mean"], 1) for r in rows]},
            {
                "name": "80%区间上限",
                "type": "line",
                "data": [r["upper"] for r in rows],
                "lineStyle": {"type": "dashed"},
            },
        ],
    }


@router.get("/leader", response_class=HTMLResponse)
async def leader(
    request: Request, user: Leader, county: str = "", start: str = "", end: str = ""
) -> Response:
    web = web_of(request)
    caller = caller_of(user)
    names = dict(web.city_counties())
    mine = [c for c in user.counties if c in names] or list(user.counties)
    chosen = county if county in mine else ""
    period = {"from": start if _DAY.match(start) else None, "to": end if _DAY.match(end) else None}
    params = {"county": chosen or None, **period}
    summary, alerts, forecast = await asyncio.gather(
        web.upstream.get(caller, "stats", "/api/v1/summary", **params),
        web.upstream.get(caller, "stats", "/api/v1/alerts", county=chosen or None, status="active", limit=50),
        web.upstream.get(caller, "stats", "/api/v1/forecast", county=chosen or None),
    )
    per_county: list[tuple[str, dict[str, Any]]] = []
    if not chosen and len(mine) > 1:
        figures = await asyncio.gather(
            *(web.upstream.get(caller, "stats", "/api/v1/summary", county=c, **period) for c in mine)
        )
        per_county = [(names.get(c, c), f) for c, f in zip(mine, figures, strict=True)]
    weeks = forecast_rows(forecast.get("forecasts", []))
    charts = {
        "chart-outcomes": outcome_chart(summary),
        "chart-timeliness": timeliness_chart(summary),
        **({"chart-counties": county_chart(per_county)} if per_county else {}),
        **({"chart-forecast": forecast_chart(weeks)} if weeks else {}),
    }
    stages = [(label, summary.get(f"time_to_{stage}_seconds") or {}) for stage, label in STAGE_LABELS.items()]
    month = datetime.now(UTC).astimezone(CHINA).strftime("%Y-%m")
    return await render(
        request,
        "leader.html",
        summary=summary,
        alerts=alerts.get("alerts", []),
        weeks=weeks,
        charts=charts,
        per_county=per_county,
        stages=[
            (label, d.get("count", 0), _days(d.get("median")), _days(d.get("p90"))) for label, d in stages
        ],
        counties=[(c, names.get(c, c)) for c in mine],
        chosen=chosen,
        start=period["from"] or "",
        end=period["to"] or "",
        month=month,
        agency_labels=AGENCY_LABELS,
        alert_kinds=ALERT_KINDS,
        category_label=_category,
        place=web.place,
    )


@router.get("/leader/report")
async def report(
    request: Request, user: Leader, month: str, county: str = "", format: str = "xlsx"
) -> Response:
    """The monthly report from stats, downloaded through the console (the person's scope)."""
    if not _MONTH.match(month):
        raise UpstreamError(422, "月份格式应为 YYYY-MM", "month must be YYYY-MM")
    kind = "html" if format == "html" else "xlsx"
    response = await web_of(request).upstream.call(
        caller_of(user),
        "stats",
        "GET",
        "/api/v1/reports/monthly",
        params={"month": month, "county": county if county in user.counties else None, "format": kind},
    )
    headers = (
        {"Content-Disposition": response.headers.get("content-disposition", "")} if kind == "xlsx" else {}
    )
    out = Response(response.content, media_type=response.headers.get("content-type"), headers=headers)
    if kind == "html":
        # The report page is the stats service's own document: show it sandboxed.
        out.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
        )
    return out
