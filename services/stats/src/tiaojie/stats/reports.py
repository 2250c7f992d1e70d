"""The monthly report for a justice bureau (调解工作月报): figures per county and township,
top categories, hotspots and individual alerts, and compliance with the staffing norms
from the registry's events. Rendered as .xlsx (openpyxl) and as an HTML page with inline
SVG charts drawn here (no script, prints as it shows)."""

from __future__ import annotations

import html
import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill

from tiaojie.contracts.common import CATEGORY_LABELS, Category, OrganisationKind
from tiaojie.contracts.stats import ALERT_KIND_LABELS, AlertKind
from tiaojie.runtime.divisions import Divisions
from tiaojie.runtime.exports import safe_cell
from tiaojie.stats import figures
from tiaojie.stats.calendar import days_between, local_day
from tiaojie.stats.repository import StatsRepository
from tiaojie.stats.service import StatsService

# 专职调解员配备标准: full-time mediators an organisation of each kind should have.
STAFFING_NORMS: dict[str, int] = {  # keyed by OrganisationKind value
    OrganisationKind.VILLAGE_COMMITTEE: 1,
    OrganisationKind.TOWNSHIP_COMMITTEE: 2,
    OrganisationKind.INDUSTRY_COMMITTEE: 3,
}
CENTRE_NORM = 5  # county-level one-stop centres
KIND_LABELS: dict[str, str] = {
    OrganisationKind.VILLAGE_COMMITTEE: "村（社区）调委会",
    OrganisationKind.TOWNSHIP_COMMITTEE: "乡镇（街道）调委会",
    OrganisationKind.INDUSTRY_COMMITTEE: "行业性专业性调委会",
    OrganisationKind.CENTRE: "县级矛盾纠纷调解中心",
}


def category_label(code: str | None) -> str:
    try:
        return CATEGORY_LABELS[Category(code or "other")]
    except ValueError:
        return code or "其他"


def _days(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 86400:.1f}"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


@dataclass
class Report:
    month: str
    counties: list[dict[str, Any]]  # name, code, figures
    townships: list[dict[str, Any]]  # county, name, code, figures
    categories: list[dict[str, Any]]
    daily: list[tuple[str, int, int]]  # day, received, concluded
    alerts: list[dict[str, Any]]
    compliance: list[dict[str, Any]]
    generated_at: datetime
    notes: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        year, month = self.month.split("-")
        return f"人民调解工作月报（{year}年{int(month)}月）"


class ReportBuilder:
    def __init__(
        self, *, repository: StatsRepository, service: StatsService, divisions: Divisions | None
    ) -> None:
        self.repo = repository
        self.service = service
        self.divisions = divisions

    def name(self, code: str | None) -> str:
        if not code:
            return "未填乡镇"
        return (self.divisions.name(code) if self.divisions else None) or code

    async def build(self, *, counties: list[str], month: str) -> Report:
        first = date.fromisoformat(f"{month}-01")
        last = date(first.year + first.month // 12, first.month % 12 + 1, 1) - timedelta(days=1)
        period = figures.Period(first, last)
        county_rows, township_rows, all_cases = [], [], []
        for county in counties:
            summary = await self.service.summary(counties=[county], first=first, last=last)
            county_rows.append({"code": county, "name": self.name(county), "figures": summary})
            cases = await self.repo.cases_for([county], months=[month])
            all_cases += cases
            by_township: dict[str, list[dict[str, Any]]] = {}
            for case in cases:
                by_township.setdefault(case.get("township") or "", []).append(case)
            for township in sorted(by_township):
                township_rows.append(
                    {
                        "county": self.name(county),
                        "code": township,
                        "name": self.name(township),
                        "figures": figures.case_figures(by_township[township], period),
                    }
                )
        daily = []
        for day in days_between(first, last):
            one = figures.Period(day, day)
            daily.append(
                (
                    day.isoformat(),
                    sum(1 for c in all_cases if one.contains(c.get("received_at"))),
                    sum(1 for c in all_cases if one.contains(c.get("concluded_at"))),
                )
            )
        alerts = [
            a
            for a in await self.repo.alerts_of(counties)
            if a.get("raised_at") is not None and period.contains(a["raised_at"] - timedelta(seconds=1))
        ]
        alerts.sort(key=lambda a: (str(a.get("detected_on")), a["_id"]))
        return Report(
            month=month,
            counties=county_rows,
            townships=township_rows,
            categories=figures.top_categories(all_cases, period, limit=21),
            daily=daily,
            alerts=[self._alert_row(a) for a in alerts],
            compliance=await self._compliance(counties, last),
            generated_at=self.service.clock.now(),
        )

    def _alert_row(self, alert: dict[str, Any]) -> dict[str, Any]:
        where = self.name(alert.get("county"))
        if alert.get("kind") == AlertKind.HOTSPOT:
            where += " " + (self.name(alert["township"]) if alert.get("township") is not None else "（全县）")
        elif alert.get("township"):
            where += " " + self.name(alert["township"])
        return {
            "kind": ALERT_KIND_LABELS.get(str(alert.get("kind")), str(alert.get("kind"))),
            "where": where,
            "category": category_label(alert.get("category")),
            "detected_on": alert.get("detected_on"),
            "status": "已解除" if alert.get("status") == "cleared" else "预警中",
            "detail": (
                f"{alert.get('observed')} 件（基线 {alert.get('expected')}）"
                if alert.get("kind") == AlertKind.HOTSPOT
                else f"案件 {alert.get('case_id')}"
            ),
        }

    async def _compliance(self, counties: list[str], month_end: date) -> list[dict[str, Any]]:
        rows = []
        soon = month_end + timedelta(days=30)
        for county in counties:
            orgs, mediators = await self.repo.registry_of(county)
            qualified: dict[str, int] = {}
            expiring = expired = suspended = 0
            for m in mediators:
                expires = m.get("certificate_expires_on")
                expires_on = date.fromisoformat(expires) if expires else None
                valid = expires_on is None or expires_on >= month_end
                if m.get("status") != "active":
                    suspended += 1
                if expires_on is not None and expires_on < month_end:
                    expired += 1
                elif expires_on is not None and expires_on <= soon:
                    expiring += 1
                if m.get("full_time") and m.get("status") == "active" and valid:
                    for org in m.get("organisation_ids", []):
                        qualified[org] = qualified.get(org, 0) + 1
            by_kind: dict[str, list[int]] = {}
            unfiled = 0
            for org in orgs:
                if not org.get("active", True):
                    continue
                if not org.get("filed", True):
                    unfiled += 1
                kind = str(org.get("kind") or "")
                norm = STAFFING_NORMS.get(kind)
                if kind == OrganisationKind.CENTRE and org.get("level") == "county":
                    norm = CENTRE_NORM
                if norm is None:
                    continue
                tally = by_kind.setdefault(kind or "", [0, 0, norm])
                tally[0] += 1
                tally[1] += int(qualified.get(org["_id"], 0) >= norm)
            rows.append(
                {
                    "county": self.name(county),
                    "organisations": len(orgs),
                    "mediators": len(mediators),
                    "full_time_qualified": sum(qualified.values()),
                    "unfiled": unfiled,
                    "suspended_or_revoked": suspended,
                    "certificates_expired": expired,
                    "certificates_expiring": expiring,
                    "staffing": [
                        {
                            "kind": KIND_LABELS.get(k, k),
                            "norm": v[2],
                            "organisations": v[0],
                            "meeting_norm": v[1],
                        }
                        for k, v in sorted(by_kind.items())
                    ],
                }
            )
        return rows


# -- rendering --------------------------------------------------------------------------------

SUMMARY_COLUMNS = (
    ("受理申请（件）", lambda f: f["received"]),
    ("受理（件）", lambda f: f["accepted"]),
    ("不予受理（件）", lambda f: f["rejected"]),
    ("调解成功（件）", lambda f: f["resolved"]),
    ("调解不成（件）", lambda f: f["failed"]),
    ("撤回（件）", lambda f: f["withdrawn"]),
    ("调解成功率", lambda f: _rate(f["success_rate"])),
    ("协议履行（件）", lambda f: f["agreements_performed"]),
    ("受理用时中位数（天）", lambda f: _days(f["time_to_accept_seconds"]["median"])),
    ("调结用时中位数（天）", lambda f: _days(f["time_to_resolve_seconds"]["median"])),
    ("调结用时P90（天）", lambda f: _days(f["time_to_resolve_seconds"]["p90"])),
)


def render_xlsx(report: Report) -> bytes:
    book = Workbook()
    bold = Font(bold=True)
    head_fill = PatternFill("solid", fgColor="DDE6F0")

    def sheet(title: str, headings: list[str], rows: list[list[Any]], first: bool = False) -> None:
        ws = book.active if first else book.create_sheet()
        assert ws is not None
        ws.title = title
        ws.append([report.title])
        ws["A1"].font = Font(bold=True, size=14)
        ws.append([])
        ws.append(headings)
        for cell in ws[3]:
            cell.font = bold
            cell.fill = head_fill
            cell.alignment = Alignment(horizontal="center", wrap_text=True)
        for row in rows:
            # Names come from the registry, typed by people: shown, never run as formulas.
            ws.append([safe_cell(v) for v in row])
        for i, heading in enumerate(headings, start=1):
            ws.column_dimensions[ws.cell(row=3, column=i).column_letter].width = max(10, len(heading) * 2 + 2)

    sheet(
        "县区概况",
        ["县区", *(c for c, _ in SUMMARY_COLUMNS), "当前在办（件）", "当前超期（件）"],
        [
            [
                c["name"],
                *(fn(c["figures"]) for _, fn in SUMMARY_COLUMNS),
                c["figures"]["open_now"],
                c["figures"]["overdue_now"]["total"],
            ]
            for c in report.counties
        ],
        first=True,
    )
    sheet(
        "乡镇街道",
        ["县区", "乡镇（街道）", *(c for c, _ in SUMMARY_COLUMNS)],
        [
            [t["county"], t["name"], *(fn(t["figures"]) for _, fn in SUMMARY_COLUMNS)]
            for t in report.townships
        ],
    )
    sheet(
        "纠纷类型",
        ["纠纷类型", "受理申请（件）", "调解成功（件）", "调解不成（件）"],
        [
            [category_label(c["category"]), c["received"], c["resolved"], c["failed"]]
            for c in report.categories
        ],
    )
    sheet(
        "风险预警",
        ["预警类型", "地区", "纠纷类型", "发现日期", "状态", "说明"],
        [
            [a["kind"], a["where"], a["category"], a["detected_on"], a["status"], a["detail"]]
            for a in report.alerts
        ],
    )
    sheet(
        "规范化建设",
        [
            "县区",
            "调解组织（个）",
            "调解员（人）",
            "合格专职调解员（人次）",
            "未备案组织",
            "停职或撤销",
            "证书已过期",
            "证书30日内到期",
            "配备标准达标情况",
        ],
        [
            [
                c["county"],
                c["organisations"],
                c["mediators"],
                c["full_time_qualified"],
                c["unfiled"],
                c["suspended_or_revoked"],
                c["certificates_expired"],
                c["certificates_expiring"],
                "；".join(
                    f"{s['kind']}（≥{s['norm']}人）{s['meeting_norm']}/{s['organisations']}"
                    for s in c["staffing"]
                ),
            ]
            for c in report.compliance
        ],
    )
    sheet("每日情况", ["日期", "受理申请（件）", "调结（件）"], [list(d) for d in report.daily])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _bar_chart(title: str, rows: list[tuple[str, list[float]]], series: list[tuple[str, str]]) -> str:
    """Horizontal grouped bars as inline SVG."""
    e = html.escape
    if not rows:
        return f"<p class='empty'>{e(title)}：本月无数据</p>"
    label_w, bar_h, gap, width = 150, 12, 8, 640
    top = max([max(v) for _, v in rows] + [1])
    height = len(rows) * (bar_h * len(series) + gap) + 40
    parts = [_svg_open(title, width, height)]
    y = 30
    for position, (name, colour) in enumerate(series):
        x = label_w + 120 * position
        parts.append(f"<rect x='{x}' y='6' width='10' height='10' fill='{colour}'/>")
        parts.append(f"<text x='{x + 14}' y='15' font-size='11'>{e(name)}</text>")
    for label, values in rows:
        parts.append(
            f"<text x='{label_w - 6}' y='{y + bar_h}' font-size='11' text-anchor='end'>{e(label)}</text>"
        )
        for k, value in enumerate(values):
            w = (width - label_w - 50) * value / top
            top_y, colour = y + k * bar_h, series[k][1]
            parts.append(
                f"<rect x='{label_w}' y='{top_y}' width='{w:.1f}' height='{bar_h - 2}' fill='{colour}'/>"
                f"<text x='{label_w + w + 4:.1f}' y='{top_y + bar_h - 3}' font-size='10'>{value:g}</text>"
            )
        y += bar_h * len(series) + gap
    parts.append("</svg>")
    return "".join(parts)


def _svg_open(title: str, width: int, height: int) -> str:
    return (
        f"<svg role='img' aria-label='{html.escape(title)}' width='{width}' height='{height}' "
        "xmlns='http://www.w3.org/2000/svg'>"
    )


def _line_chart(title: str, points: list[tuple[str, int, int]]) -> str:
    e = html.escape
    width, height, pad = 640, 200, 30
    top = max([max(p[1], p[2]) for p in points] + [1])
    n = max(len(points) - 1, 1)

    def x(i: int) -> float:
        return pad + (width - 2 * pad) * i / n

    def path(values: list[int]) -> str:
        return " ".join(
            f"{x(i):.1f},{height - pad - (height - 2 * pad) * v / top:.1f}" for i, v in enumerate(values)
        )

    ticks = "".join(
        f"<text x='{x(i):.1f}' y='{height - 10}' font-size='10' text-anchor='middle'>{e(p[0][8:])}</text>"
        for i, p in enumerate(points)
        if i % 5 == 0
    )
    received = [p[1] for p in points]
    concluded = [p[2] for p in points]
    return (
        _svg_open(title, width, height)
        + f"<line x1='{pad}' y1='{height - pad}' x2='{width - pad}' y2='{height - pad}' stroke='#999'/>"
        f"<text x='{pad}' y='14' font-size='11'>最高 {top} 件/日</text>"
        f"<polyline fill='none' stroke='#2f6db5' stroke-width='2' points='{path(received)}'/>"
        f"<polyline fill='none' stroke='#3a9a5b' stroke-width='2' points='{path(concluded)}'/>"
        f"<text x='{width - 200}' y='14' font-size='11' fill='#2f6db5'>受理申请</text>"
        f"<text x='{width - 120}' y='14' font-size='11' fill='#3a9a5b'>调结</text>{ticks}</svg>"
    )


def _table(headings: list[str], rows: list[list[Any]]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in headings)
    body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    body = body or "<tr><td colspan=99>无</td></tr>"
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: Report) -> str:
    e = html.escape
    counties = _table(
        ["县区", *(c for c, _ in SUMMARY_COLUMNS), "当前在办", "当前超期"],
        [
            [
                c["name"],
                *(fn(c["figures"]) for _, fn in SUMMARY_COLUMNS),
                c["figures"]["open_now"],
                c["figures"]["overdue_now"]["total"],
            ]
            for c in report.counties
        ],
    )
    townships = _table(
        ["县区", "乡镇（街道）", *(c for c, _ in SUMMARY_COLUMNS)],
        [
            [t["county"], t["name"], *(fn(t["figures"]) for _, fn in SUMMARY_COLUMNS)]
            for t in report.townships
        ],
    )
    township_chart = _bar_chart(
        "各乡镇（街道）受理与调解成功",
        [(t["name"], [t["figures"]["received"], t["figures"]["resolved"]]) for t in report.townships[:30]],
        [("受理申请", "#2f6db5"), ("调解成功", "#3a9a5b")],
    )
    category_chart = _bar_chart(
        "纠纷类型",
        [(category_label(c["category"]), [c["received"]]) for c in report.categories[:10]],
        [("受理申请", "#c0772b")],
    )
    alerts = _table(
        ["预警类型", "地区", "纠纷类型", "发现日期", "状态", "说明"],
        [
            [a["kind"], a["where"], a["category"], a["detected_on"], a["status"], a["detail"]]
            for a in report.alerts
        ],
    )
    compliance = _table(
        [
            "县区",
            "调解组织",
            "调解员",
            "合格专职调解员",
            "未备案组织",
            "停职或撤销",
            "证书已过期",
            "证书30日内到期",
            "配备标准达标情况",
        ],
        [
            [
                c["county"],
                c["organisations"],
                c["mediators"],
                c["full_time_qualified"],
                c["unfiled"],
                c["suspended_or_revoked"],
                c["certificates_expired"],
                c["certificates_expiring"],
                "；".join(
                    f"{s['kind']}（≥{s['norm']}人）{s['meeting_norm']}/{s['organisations']}"
                    for s in c["staffing"]
                ),
            ]
            for c in report.compliance
        ],
    )
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{e(report.title)}</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }}
th, td {{ border: 1px solid #bbb; padding: 3px 8px; text-align: right; }}
th {{ background: #dde6f0; }}
td:first-child, td:nth-child(2) {{ text-align: left; white-space: nowrap; }}
h1 {{ font-size: 22px; }} h2 {{ font-size: 17px; border-left: 4px solid #2f6db5; padding-left: 6px; }}
.meta {{ color: #666; font-size: 12px; }}
</style></head><body>
<h1>{e(report.title)}</h1>
<p class="meta">统计口径：各项业务按发生日期计入当月（北京时间）；
调解成功率 = 调解成功 ÷（调解成功 + 调解不成）；用时自登记起算，“调结”含调解成功与调解不成。
生成时间：{e(local_day(report.generated_at).isoformat())}</p>
<h2>一、县区概况</h2>{counties}
<h2>二、每日受理与调结</h2>{_line_chart("每日受理与调结", report.daily)}
<h2>三、乡镇（街道）情况</h2>{township_chart}{townships}
<h2>四、纠纷类型</h2>{category_chart}
<h2>五、风险预警</h2>{alerts}
<h2>六、规范化建设（调解组织与调解员）</h2>{compliance}
</body></html>"""
