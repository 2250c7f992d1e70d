"""The summary figures, computed from projection documents (pure, no I/O).

Conventions (documented in the API):
- A flow counts in a period when it happened in it: received by received_at, accepted by
  accepted_at, resolved by resolved_at, ... (local days, Asia/Shanghai, both ends included).
- Times to accept / assign / first session / resolve run from registration; "resolve"
  means concluded (调结), with or without agreement; they cover cases that reached the
  stage in the period.
- The success rate (调解成功率) is resolved / (resolved + failed) in the period.
- Quantiles interpolate linearly between order statistics (Hyndman & Fan type 7, as
  numpy and Excel's PERCENTILE.INC): the median of 1, 2, 3, 10 is 2.5, its p90 7.9.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from tiaojie.contracts.common import AgencyKind
from tiaojie.stats.calendar import local_day
from tiaojie.stats.projection import STAGES, overdue_stage, response_seconds, stage_seconds

Doc = dict[str, Any]
COUNTED = {
    "received": "received_at",
    "accepted": "accepted_at",
    "rejected": "rejected_at",
    "assigned": "assigned_at",
    "resolved": "resolved_at",
    "failed": "failed_at",
    "withdrawn": "withdrawn_at",
    "agreements_performed": "performed_at",
}
INTERNAL = "internal"  # hand-overs between mediation bodies (no agency)


def quantile(values: Sequence[float], q: float) -> float | None:
    """Type-7 quantile (linear interpolation); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def distribution(values: Sequence[float]) -> dict[str, float | int | None]:
    return {"count": len(values), "median": quantile(values, 0.5), "p90": quantile(values, 0.9)}


@dataclass(frozen=True)
class Period:
    first: date | None = None
    last: date | None = None

    def contains(self, at: datetime | None) -> bool:
        if at is None:
            return False
        day = local_day(at)
        return (self.first is None or day >= self.first) and (self.last is None or day <= self.last)


def case_figures(cases: Iterable[Doc], period: Period) -> dict[str, Any]:
    """Counts, success rate, times to each stage and timeliness of cases in a period."""
    counts = dict.fromkeys(COUNTED, 0)
    times: dict[str, list[float]] = {stage: [] for stage in STAGES}
    on_time = {"accepted_on_time": 0, "accepted_late": 0, "concluded_on_time": 0, "concluded_late": 0}
    for doc in cases:
        for name, field in COUNTED.items():
            if period.contains(doc.get(field)):
                counts[name] += 1
        for stage, field in STAGES.items():
            if period.contains(doc.get(field)):
                seconds = stage_seconds(doc, stage)
                if seconds is not None:
                    times[stage].append(seconds)
        if period.contains(doc.get("accepted_at")) and doc.get("acceptance_due") is not None:
            late = doc["accepted_at"] > doc["acceptance_due"]
            on_time["accepted_late" if late else "accepted_on_time"] += 1
        if period.contains(doc.get("concluded_at")) and doc.get("mediation_due") is not None:
            late = doc["concluded_at"] > doc["mediation_due"]
            on_time["concluded_late" if late else "concluded_on_time"] += 1
    concluded = counts["resolved"] + counts["failed"]
    return {
        **counts,
        "success_rate": counts["resolved"] / concluded if concluded else None,
        **{f"time_to_{stage}_seconds": distribution(values) for stage, values in times.items()},
        "timeliness": on_time,
    }


def backlog_figures(open_cases: Iterable[Doc], now: datetime) -> dict[str, Any]:
    """Cases open now and those past a running statutory clock."""
    open_now = 0
    overdue = {"acceptance": 0, "mediation": 0}
    for doc in open_cases:
        if not doc.get("open"):
            continue
        open_now += 1
        stage = overdue_stage(doc, now)
        if stage:
            overdue[stage] += 1
    return {"open_now": open_now, "overdue_now": {**overdue, "total": sum(overdue.values())}}


def referral_figures(handovers: Iterable[Doc], period: Period) -> dict[str, Any]:
    """Referrals by agency kind: requested, accepted, declined, closed, response times."""
    kinds: dict[str, dict[str, Any]] = {}
    times: dict[str, list[float]] = {}
    transfers: dict[str, int] = {}
    overdue_total = 0
    for doc in handovers:
        if doc.get("overdue_stages") and doc.get("open"):
            overdue_total += 1
        if doc.get("kind") == "transfer":
            if period.contains(doc.get("requested_at")):
                key = str(doc.get("transfer_kind") or "unknown")
                transfers[key] = transfers.get(key, 0) + 1
            continue
        kind = str(doc.get("agency_kind") or INTERNAL)
        row = kinds.setdefault(
            kind, {"requested": 0, "accepted": 0, "declined": 0, "closed": 0, "resolved": 0, "overdue_now": 0}
        )
        for name, field in (
            ("requested", "requested_at"),
            ("accepted", "accepted_at"),
            ("declined", "declined_at"),
            ("closed", "closed_at"),
        ):
            if period.contains(doc.get(field)):
                row[name] += 1
        if period.contains(doc.get("closed_at")) and doc.get("outcome") == "resolved":
            row["resolved"] += 1
        if doc.get("overdue_stages") and doc.get("open"):
            row["overdue_now"] += 1
        if period.contains(doc.get("answered_at")):
            seconds = response_seconds(doc)
            if seconds is not None:
                times.setdefault(kind, []).append(seconds)
    for kind, row in kinds.items():
        row["response_seconds"] = distribution(times.get(kind, []))
    order = [str(k) for k in AgencyKind] + [INTERNAL]
    return {
        "by_agency_kind": {
            k: kinds[k] for k in sorted(kinds, key=lambda k: (order.index(k) if k in order else 99, k))
        },
        "transfers": transfers,
        "overdue_now": overdue_total,
    }


def top_categories(cases: Iterable[Doc], period: Period, limit: int = 10) -> list[dict[str, Any]]:
    """Categories by cases received in the period, with resolved and failed counts."""
    table: dict[str, dict[str, int]] = {}
    for doc in cases:
        category = str(doc.get("category") or "other")
        row = table.setdefault(category, {"received": 0, "resolved": 0, "failed": 0})
        for name, field in (
            ("received", "received_at"),
            ("resolved", "resolved_at"),
            ("failed", "failed_at"),
        ):
            if period.contains(doc.get(field)):
                row[name] += 1
    ranked = sorted(table.items(), key=lambda kv: (-kv[1]["received"], kv[0]))
    return [{"category": k, **v} for k, v in ranked if v["received"] or v["resolved"] or v["failed"]][:limit]
