"""Events produced by the intake service, and the submission contract it accepts.

DisputeSubmission is what desks, web and mobile channels POST and what other systems
publish (as DisputeSubmitted) on the submissions topic. Case events never carry
personal data in clear: parties appear only as keyed hashes (party_keys).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

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
    # Other counties the dispute reaches into (parties or the disputed object elsewhere):
    # a cross-county dispute goes to the county one-stop centre.
    related_counties: list[Annotated[str, Field(pattern=COUNTY_PATTERN)]] = Field(
        default_factory=list, max_length=20
    )


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
    duplicate_of: str | None = None


class CaseEvent(EventData):
    """Fields every lifecycle event after registration carries, so a consumer can project
    a case from any one of them: where it is, who holds it, its new status and when."""

    case_id: str
    county: str
    township: str | None = None
    category: Category | None = None
    organisation_id: str | None = None
    status: CaseStatus
    at: datetime
    by: str = ""  # user id or "system:<service>"; never a personal name
    referral_id: str | None = None  # set when the case came from (or went to) a referral


class CaseAccepted(CaseEvent):
    """受理: the case number is assigned and the mediation clock starts."""

    event_type = "tiaojie.intake.CaseAccepted"

    case_number: str  # e.g. (2026)临兰人调字第123号
    mediation_due: datetime


class CaseRejected(CaseEvent):
    """不予受理, with a reason from the fixed list."""

    event_type = "tiaojie.intake.CaseRejected"

    reason_code: str
    reason_text: str = ""


class CaseAssignmentRecorded(CaseEvent):
    """Intake recorded the mediator the registry assigned to a case."""

    event_type = "tiaojie.intake.CaseAssignmentRecorded"

    mediator_id: str


class SessionRecorded(CaseEvent):
    """A mediation session was held; the first one moves the case into mediation."""

    event_type = "tiaojie.intake.SessionRecorded"

    session_number: int
    held_at: datetime


class CaseResolved(CaseEvent):
    """调解成功: an oral or written agreement."""

    event_type = "tiaojie.intake.CaseResolved"

    agreement_form: str  # oral | written
    amount: float | None = None
    performance_due: date | None = None
    agreement_summary: str = ""  # no personal data: parties appear as 申请人/被申请人
    judicial_confirmation_due: date | None = None


class CaseFailed(CaseEvent):
    """调解不成, with the route the parties are guided to."""

    event_type = "tiaojie.intake.CaseFailed"

    route: str  # litigation | arbitration | administrative | other
    reason: str = ""


class AgreementPerformed(CaseEvent):
    """Proof of performance of the agreement was recorded."""

    event_type = "tiaojie.intake.AgreementPerformed"


class FollowUpRecorded(CaseEvent):
    """回访: a follow-up visit was recorded."""

    event_type = "tiaojie.intake.FollowUpRecorded"

    satisfied: bool | None = None


class CaseArchived(CaseEvent):
    """归档: the file is complete and closed."""

    event_type = "tiaojie.intake.CaseArchived"


class CaseWithdrawn(CaseEvent):
    """The applicant withdrew; `previous_status` is the stage it was withdrawn at."""

    event_type = "tiaojie.intake.CaseWithdrawn"

    previous_status: CaseStatus


class CaseTransferred(CaseEvent):
    """The case moved to another organisation after an accepted transfer (转办/交办/上报)."""

    event_type = "tiaojie.intake.CaseTransferred"

    from_organisation_id: str | None = None
    transfer_id: str
    kind: str  # lateral | assign_down | escalate_up


class DeadlineChanged(CaseEvent):
    """A statutory clock was set, paused, resumed or extended (by consent)."""

    event_type = "tiaojie.intake.DeadlineChanged"

    clock: str  # acceptance | mediation
    due: datetime | None = None
    change: str  # set | paused | resumed | extended
    reason: str = ""


class DuplicateLinked(CaseEvent):
    """A new submission matched an open case and was linked to it instead of opening one."""

    event_type = "tiaojie.intake.DuplicateLinked"

    channel: Channel


class RiskRaised(CaseEvent):
    """A case was rated 重大 (grave): published at once, with the signals found."""

    event_type = "tiaojie.intake.RiskRaised"

    risk_level: RiskLevel
    signals: list[str] = Field(default_factory=list)
    party_keys: list[str] = Field(default_factory=list)


class CaseNominated(EventData):
    """A mediator or centre user nominated an archived case for the typical-case library
    (topic intake.nominations.v1). The case's texts carry names and numbers, so they travel
    encrypted for the library alone (content_enc: JSON of NominatedContent, encrypted with
    tiaojie.runtime.pii.Protector and the platform's PII key); the library anonymises them
    before it stores anything."""

    event_type = "tiaojie.intake.CaseNominated"

    case_id: str
    county: str
    township: str | None = None
    category: Category
    organisation_id: str | None = None
    case_number: str | None = None
    outcome: CaseStatus  # the case's final outcome: resolved | failed | withdrawn
    amount: float | None = None
    referral_kind: str | None = None  # e.g. delegation, when a court referred it
    received_at: datetime
    closed_at: datetime | None = None
    nominated_by: str
    nominated_at: datetime
    note: str = ""  # why the nominator thinks it is typical (free text: anonymised too)
    content_enc: str


class NominatedSession(BaseModel):
    model_config = ConfigDict(frozen=True)

    held_at: datetime
    place: str = ""
    participants: str = ""
    record: str = ""


class NominatedContent(BaseModel):
    """The decrypted content of CaseNominated: the case's free texts, not yet anonymised."""

    model_config = ConfigDict(frozen=True)

    description: str
    parties: list[dict[str, str]] = Field(default_factory=list)  # {"role": ..., "name": ...}
    sessions: list[NominatedSession] = Field(default_factory=list)
    agreement_text: str = ""
    failure_reason: str = ""
    follow_up_record: str = ""


__all__ = [
    "AgreementPerformed",
    "CaseAccepted",
    "CaseArchived",
    "CaseAssignmentRecorded",
    "CaseEvent",
    "CaseFailed",
    "CaseNominated",
    "CaseRegistered",
    "CaseRejected",
    "CaseResolved",
    "CaseTransferred",
    "CaseWithdrawn",
    "DeadlineChanged",
    "DisputeSubmission",
    "DisputeSubmitted",
    "DuplicateLinked",
    "FollowUpRecorded",
    "NominatedContent",
    "NominatedSession",
    "PartyIn",
    "RiskRaised",
    "SessionRecorded",
]
