"""The compliance report of a county (pure: built from its organisations and mediators).

Per township and for the county: full-time mediators against the staffing norms (≥1 per
village committee, ≥2 per township, ≥3 per industry committee, ≥5 per county centre),
certificate coverage, training hours per mediator this year, the grade distribution,
committee sizes (3–9 members) and certificates expiring soon. Full-time mediators count
toward a norm only while their effective status is active (a suspended one does not). The
county centre is the one the directory's rule names (`tiaojie.runtime.directory`), the
centre the county's cases escalate to.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from tiaojie.contracts.common import DivisionLevel, MediatorStatus, OrganisationKind
from tiaojie.registry.eligibility import certificate_valid, effective_status
from tiaojie.registry.models import (
    COMMITTEES,
    ORGANISATION_KIND_LABELS,
    MediatorDoc,
    OrganisationDoc,
)
from tiaojie.runtime.directory import county_centre
from tiaojie.runtime.divisions import Divisions
from tiaojie.runtime.exports import safe_cell

NORMS: dict[str, int] = {"village": 1, "township": 2, "industry": 3, "county_centre": 5}
NORM_LABELS = {
    "village": "村（居）调委会专职调解员≥1",
    "township": "乡镇（街道）专职调解员≥2",
    "industry": "行业性专业性调委会专职调解员≥3",
    "county_centre": "县级调解中心专职调解员≥5",
}
COUNTY_LEVEL = "county_level"


@dataclass(frozen=True)
class ReportSettings:
    expiring_within_days: int = 90
    committee_min: int = 3
    committee_max: int = 9


def township_of(org: OrganisationDoc) -> str | None:
    """The 9-digit township an organisation belongs to, or None for county level and up."""
    if org.level in (DivisionLevel.TOWNSHIP, DivisionLevel.VILLAGE) and len(org.division_code) >= 9:
        return org.division_code[:9]
    return None


def _metrics(mediators: Iterable[MediatorDoc], *, today: date, horizon: date) -> dict[str, Any]:
    people = list({m.id: m for m in mediators}.values())
    grades = {"1": 0, "2": 0, "3": 0, "4": 0, "none": 0}
    status = {str(s): 0 for s in MediatorStatus}
    full_time_active = certified = expiring = 0
    hours = 0.0
    for m in people:
        grades[str(m.grade) if m.grade else "none"] += 1
        effective = effective_status(m, today=today)
        status[str(effective)] += 1
        if m.full_time and effective == MediatorStatus.ACTIVE:
            full_time_active += 1
        if certificate_valid(m, today=today):
            certified += 1
            if m.certificate_expires_on is not None and m.certificate_expires_on <= horizon:
                expiring += 1
        hours += sum(t.hours for t in m.training if t.on.year == today.year)
    n = len(people)
    return {
        "mediators": n,
        "full_time": sum(1 for m in people if m.full_time),
        "full_time_active": full_time_active,
        "part_time": sum(1 for m in people if not m.full_time),
        "government_purchased": sum(1 for m in people if m.government_purchased),
        "status": status,
        "certified": certified,
        "certificate_coverage": round(certified / n, 4) if n else 0.0,
        "training_hours": round(hours, 1),
        "training_hours_per_mediator": round(hours / n, 2) if n else 0.0,
        "grades": grades,
        "expiring_certificates": expiring,
    }


def build_report(
    *,
    county: str,
    organisations: Sequence[OrganisationDoc],
    mediators: Sequence[MediatorDoc],
    divisions: Divisions,
    today: date,
    settings: ReportSettings,
) -> dict[str, Any]:
    """The report as a JSON-ready dict."""
    horizon = today + timedelta(days=settings.expiring_within_days)
    members: dict[str, list[MediatorDoc]] = {o.id: [] for o in organisations}
    for m in mediators:
        for org_id in m.organisation_ids:
            if org_id in members:
                members[org_id].append(m)

    def active_full_time(people: Iterable[MediatorDoc]) -> int:
        unique = {m.id: m for m in people}.values()
        return sum(
            1 for m in unique if m.full_time and effective_status(m, today=today) == MediatorStatus.ACTIVE
        )

    checks: list[dict[str, Any]] = []

    def check(norm: str, scope: str, name: str, people: Iterable[MediatorDoc], org_id: str | None) -> None:
        have = active_full_time(people)
        checks.append(
            {
                "norm": norm,
                "norm_label": NORM_LABELS[norm],
                "scope": scope,
                "name": name,
                "organisation_id": org_id,
                "required": NORMS[norm],
                "full_time_active": have,
                "gap": max(0, NORMS[norm] - have),
            }
        )

    # The centre the county's cases escalate to, by the directory's rule (the one routing uses).
    centre = county_centre(organisations, county=county)
    by_township: dict[str, list[OrganisationDoc]] = {}
    county_level: list[OrganisationDoc] = []
    for org in organisations:
        township = township_of(org)
        if township:
            by_township.setdefault(township, []).append(org)
        else:
            county_level.append(org)
        if not org.active:
            continue
        if org.kind == OrganisationKind.VILLAGE_COMMITTEE:
            check("village", org.division_code, org.name, members[org.id], org.id)
        elif org.kind == OrganisationKind.INDUSTRY_COMMITTEE:
            check("industry", org.division_code, org.name, members[org.id], org.id)
        elif centre is not None and org.id == centre.id:
            check("county_centre", org.division_code, org.name, members[org.id], org.id)
    for township, orgs in sorted(by_township.items()):
        township_orgs = [
            o
            for o in orgs
            if o.active and o.level == DivisionLevel.TOWNSHIP and o.kind != OrganisationKind.VILLAGE_COMMITTEE
        ]
        if township_orgs:
            people = [m for o in township_orgs for m in members[o.id]]
            check("township", township, divisions.name(township) or township, people, None)

    townships = []
    for township, orgs in sorted(by_township.items()):
        people = [m for o in orgs for m in members[o.id]]
        townships.append(
            {
                "division_code": township,
                "name": divisions.name(township) or township,
                "organisations": len(orgs),
                **_metrics(people, today=today, horizon=horizon),
                "gap": sum(c["gap"] for c in checks if c["scope"].startswith(township)),
            }
        )
    county_people = [m for o in county_level for m in members[o.id]]
    committees = []
    for org in organisations:
        if org.kind in COMMITTEES and org.active:
            size = len({m.id for m in members[org.id]})
            verdict = (
                "too_few"
                if size < settings.committee_min
                else "too_many"
                if size > settings.committee_max
                else "ok"
            )
            if verdict != "ok":
                committees.append(
                    {
                        "organisation_id": org.id,
                        "name": org.name,
                        "kind": str(org.kind),
                        "kind_label": ORGANISATION_KIND_LABELS[org.kind],
                        "members": size,
                        "check": verdict,
                    }
                )
    expiring = sorted(
        (
            {
                "mediator_id": m.id,
                "name": m.name,
                "organisation_ids": m.organisation_ids,
                "certificate_number": m.certificate_number,
                "expires_on": m.certificate_expires_on.isoformat(),
                "days_left": (m.certificate_expires_on - today).days,
            }
            for m in mediators
            if m.certificate_expires_on is not None
            and certificate_valid(m, today=today)
            and m.certificate_expires_on <= horizon
        ),
        key=lambda e: (e["expires_on"], e["mediator_id"]),
    )
    gaps = {norm: sum(c["gap"] for c in checks if c["norm"] == norm) for norm in NORMS}
    return {
        "county": county,
        "county_name": divisions.name(county) or county,
        "as_of": today.isoformat(),
        "year": today.year,
        "norms": NORMS,
        "summary": {
            "organisations": len(organisations),
            **_metrics(mediators, today=today, horizon=horizon),
            "gaps": gaps,
        },
        "county_level": {
            "organisations": len(county_level),
            **_metrics(county_people, today=today, horizon=horizon),
        },
        "townships": townships,
        "norm_checks": checks,
        "gaps": gaps,
        "committee_size": committees,
        "expiring_certificates": expiring,
        "expiring_within_days": settings.expiring_within_days,
    }


_SCOPE_COLUMNS = (
    ("范围", "scope"),
    ("区划代码", "division_code"),
    ("名称", "name"),
    ("调解组织数", "organisations"),
    ("调解员数", "mediators"),
    ("专职调解员", "full_time"),
    ("在岗专职调解员", "full_time_active"),
    ("兼职调解员", "part_time"),
    ("暂停", "suspended"),
    ("吊销", "revoked"),
    ("有效持证", "certified"),
    ("持证率", "certificate_coverage"),
    ("本年培训学时", "training_hours"),
    ("人均培训学时", "training_hours_per_mediator"),
    ("一级", "grade_1"),
    ("二级", "grade_2"),
    ("三级", "grade_3"),
    ("四级", "grade_4"),
    ("未定级", "grade_none"),
    ("证书即将到期", "expiring_certificates"),
)


def _scope_row(scope: str, code: str, name: str, block: dict[str, Any]) -> list[Any]:
    flat = {
        "scope": scope,
        "division_code": code,
        "name": name,
        **{k: v for k, v in block.items() if not isinstance(v, dict)},
        "suspended": block["status"]["suspended"],
        "revoked": block["status"]["revoked"],
        **{f"grade_{k}": v for k, v in block["grades"].items()},
    }
    return [flat.get(key, "") for _, key in _SCOPE_COLUMNS]


# A cell a spreadsheet program would read as a formula (CSV injection): = + - @, and tab or
# carriage return before one of them.
class _SafeWriter:
    """csv.writer whose every text cell is neutralised (names are filed by people)."""

    def __init__(self, out: io.StringIO) -> None:
        self._writer = csv.writer(out)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([safe_cell(v) for v in row])


def report_csv(report: dict[str, Any]) -> str:
    """The report as CSV in three sections (figures, norms, expiring certificates), with
    bilingual headers; a byte-order mark lets spreadsheet programs read it as UTF-8; no
    cell can start a formula."""
    out = io.StringIO()
    out.write("\ufeff")
    w = _SafeWriter(out)
    w.writerow([f"{report['county_name']}人民调解组织队伍合规报告", report["county"], report["as_of"]])
    w.writerow([f"{zh} ({en})" for zh, en in _SCOPE_COLUMNS])
    w.writerow(_scope_row("全县 county", report["county"], report["county_name"], report["summary"]))
    w.writerow(_scope_row("县级组织 county_level", report["county"], "县级调解组织", report["county_level"]))
    for t in report["townships"]:
        w.writerow(_scope_row("乡镇 township", t["division_code"], t["name"], t))
    w.writerow([])
    w.writerow(
        ["配备标准 (norm)", "范围 (scope)", "名称 (name)", "标准 (required)", "在岗专职 (have)", "缺口 (gap)"]
    )
    for c in report["norm_checks"]:
        w.writerow([c["norm_label"], c["scope"], c["name"], c["required"], c["full_time_active"], c["gap"]])
    w.writerow([])
    w.writerow(["调委会人数 (committee)", "名称 (name)", "人数 (members)", "结论 (check)"])
    for c in report["committee_size"]:
        w.writerow([c["organisation_id"], c["name"], c["members"], c["check"]])
    w.writerow([])
    w.writerow(
        [
            f"证书{report['expiring_within_days']}天内到期 (expiring)",
            "姓名 (name)",
            "证书编号 (certificate)",
            "有效期至 (expires_on)",
            "剩余天数 (days_left)",
        ]
    )
    for e in report["expiring_certificates"]:
        w.writerow([e["mediator_id"], e["name"], e["certificate_number"], e["expires_on"], e["days_left"]])
    return out.getvalue()
