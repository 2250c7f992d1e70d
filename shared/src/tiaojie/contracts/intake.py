"""Events produced by the intake service, and the submission contract it accepts.

DisputeSubmission is what desks, web and mobile channels POST and what other systems
publish (as DisputeSubmitted) on the submissions topic. Case events never carry
personal data in clear: parties appear only as keyed hashes (party_keys).
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from tiaojie.contracts.common import CaseStatus, Category, Channel, RiskLevel
from tiaojie.contracts.envelope import EventData

COUNTY_PATTERN = r"^\d{6}$"
TOWNSHIP_PATTERN = r"^\d{9}(\d{3})?$"


class PartyIn(BaseModel):
    """A party as submitted: personal data, validated and protected by intake."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    kind: str = Field(default="person", pattern=r"^(person|organisation)$")
    name: str = Field(min_length=1, max_length=100)
    id_number: str | None = Field(default=None, max_length=32)
    phone: str | None = Field(default=None, max_length=32)
    address: str | None = Field(default=None, max_length=200)
    vulnerable: bool = False  # minor, elderly, disabled, pregnant...


class DisputeSubmission(BaseModel):
    """A dispute as a channel submits it (HTTP body, or data of DisputeSubmitted)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    channel: Channel
    county: str = Field(pattern=COUNTY_PATTERN)
    township: str | None = Field(default=None, pattern=TOWNSHIP_PATTERN)
    category: Category | None = None
    description: str = Field(min_length=1, max_length=5000)
    applicants: list[PartyIn] = Field(min_length=1, max_length=200)
    respondents: list[PartyIn] = Field(default_factory=list, max_length=200)
    amount: float | None = Field(default=None, ge=0, le=1e12)
    occurred_on: date | None = None
    address: str | None = Field(default=None, max_length=200)
    external_ref: str | None = Field(default=None, max_length=100)


class DisputeSubmitted(EventData):
    """A dispute submitted by another system on the submissions topic."""

    event_type = "tiaojie.intake.DisputeSubmitted"
    model_config = ConfigDict(frozen=True, extra="forbid")

    submission: DisputeSubmission


class CaseRegistered(EventData):
    """A dispute was registered (not yet accepted) and routed to an organisation."""

    event_type = "tiaojie.intake.CaseRegistered"

    case_id: str
    channel: Channel
    county: str
    township: str | None = None
    category: Category
    category_confidence: float = 1.0
    risk_level: RiskLevel = RiskLevel.ORDINARY
    risk_signals: list[str] = Field(default_factory=list)
    organisation_id: str | None = None
    party_keys: list[str] = Field(default_factory=list)
    parties_count: int = 1
    amount: float | None = None
    received_at: datetime
    acceptance_due: datetime | None = None
    referral_id: str | None = None


class CaseAssignmentRecorded(EventData):
    """Intake recorded the mediator the registry assigned to a case."""

    event_type = "tiaojie.intake.CaseAssignmentRecorded"

    case_id: str
    county: str
    organisation_id: str | None = None
    mediator_id: str
    assigned_at: datetime
    status: CaseStatus


__all__ = [
    "CaseAssignmentRecorded",
    "CaseRegistered",
    "DisputeSubmission",
    "DisputeSubmitted",
    "PartyIn",
]
