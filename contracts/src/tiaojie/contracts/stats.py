"""Events produced by the stats service on stats.alerts.v1 (keyed by alert id).

Two families of alert:
- hotspots (风险热点): a township's (or a whole county's) daily count of one dispute
  category rose above what its calendar-adjusted baseline explains. HotspotRaised when the
  detector's statistic crosses its threshold, HotspotCleared when it has fallen back.
- individual risk (个案预警): a case rated 重大 (grave) by intake, or a repeat dispute
  between the same parties at another organisation. RiskAlertRaised, and RiskAlertCleared
  when the case is concluded (resolved, failed, withdrawn, rejected or archived).

Alert ids are deterministic (derived from what raised them), so a redelivered input or a
rebuild never raises the same alert twice. No personal data: parties are never named,
not even by their keyed hashes; related cases appear by id and county only.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from tiaojie.contracts.common import Category, RiskLevel
from tiaojie.contracts.envelope import EventData


class AlertKind:
    """Values of an alert's `kind` (plain strings in events and APIs)."""

    HOTSPOT = "hotspot"
    GRAVE_RISK = "grave_risk"  # 重大风险案件
    REPEAT_DISPUTE = "repeat_dispute"  # 同一当事人跨机构重复纠纷


ALERT_KIND_LABELS: dict[str, str] = {
    AlertKind.HOTSPOT: "风险热点",
    AlertKind.GRAVE_RISK: "重大风险案件",
    AlertKind.REPEAT_DISPUTE: "跨机构重复纠纷",
}


class HotspotRaised(EventData):
    """A township (or, with `township` None, a county) × category surge was detected."""

    event_type = "tiaojie.stats.HotspotRaised"

    alert_id: str
    county: str
    township: str | None = None  # None: the county as a whole (several townships rising)
    category: Category
    method: str  # nbcusum | c2
    score: float  # the detector's statistic on the day of detection
    threshold: float
    started_on: date  # first day of the excursion that led to the alarm
    detected_on: date  # the (local, Asia/Shanghai) day whose counts crossed the threshold
    observed: int  # cases counted from started_on to detected_on
    expected: float  # what the baseline expected over the same days
    raised_at: datetime


class HotspotCleared(EventData):
    """The statistic of a raised hotspot has fallen back: the alert is no longer active."""

    event_type = "tiaojie.stats.HotspotCleared"

    alert_id: str
    county: str
    township: str | None = None
    category: Category
    method: str
    detected_on: date
    cleared_on: date
    observed: int  # cases counted from started_on to cleared_on
    expected: float
    cleared_at: datetime


class RelatedCase(BaseModel):
    """Another case an individual alert refers to (by id; never by party)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    case_id: str
    county: str
    organisation_id: str | None = None
    received_at: datetime | None = None


class RiskAlertRaised(EventData):
    """An individual case needs attention now: 重大 risk, or a repeat dispute between the
    same parties at another organisation (跨机构重复纠纷)."""

    event_type = "tiaojie.stats.RiskAlertRaised"

    alert_id: str
    kind: str  # grave_risk | repeat_dispute
    case_id: str
    county: str
    township: str | None = None
    category: Category | None = None
    organisation_id: str | None = None
    risk_level: RiskLevel | None = None
    signals: list[str] = Field(default_factory=list)
    related: list[RelatedCase] = Field(default_factory=list)
    raised_at: datetime


class RiskAlertCleared(EventData):
    """The case of an individual alert was concluded: the alert is closed."""

    event_type = "tiaojie.stats.RiskAlertCleared"

    alert_id: str
    kind: str
    case_id: str
    county: str
    outcome: str  # the case status that concluded it
    cleared_at: datetime


__all__ = [
    "ALERT_KIND_LABELS",
    "AlertKind",
    "HotspotCleared",
    "HotspotRaised",
    "RelatedCase",
    "RiskAlertCleared",
    "RiskAlertRaised",
]
