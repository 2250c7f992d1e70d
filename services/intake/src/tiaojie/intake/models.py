"""Documents intake stores: cases (one document per case, 一案一卷, with its parties
protected, its file, its history and its pending events) and the organisation projection.

BSON has no date type: calendar dates are stored as ISO strings (see to_mongo), moments
as datetimes (UTC).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tiaojie.contracts.common import CaseStatus, Category, Channel, RiskLevel


class _Stored(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class StoredParty(_Stored):
    """A party at rest: name and numbers encrypted, with keyed hashes for matching."""

    role: str  # applicant | respondent
    kind: str = "person"
    name_enc: str
    name_key: str | None = None
    id_number_enc: str | None = None
    id_number_key: str | None = None
    phone_enc: str | None = None
    phone_key: str | None = None
    address_enc: str | None = None
    vulnerable: bool = False

    @property
    def identity_key(self) -> str | None:
        """The strongest key that identifies this party: ID number, else phone, else name."""
        return self.id_number_key or self.phone_key or self.name_key


class Assignment(_Stored):
    mediator_id: str
    mediator_name: str
    organisation_id: str
    assigned_at: datetime
    reason: str = ""
    escalated_from: str | None = None
    manual: bool = False


class AssignmentFailure(_Stored):
    reason: str
    tried: list[str] = Field(default_factory=list)
    at: datetime


class HistoryEntry(_Stored):
    at: datetime
    action: str
    by: str
    status: CaseStatus
    note: str = ""


class RiskSignalDoc(_Stored):
    code: str
    label: str
    weight: int
    detail: str = ""


class Rejection(_Stored):
    reason_code: str
    reason_text: str = ""
    at: datetime
    by: str


class Pause(_Stored):
    paused_at: datetime
    resumed_at: datetime | None = None
    reason: str = ""


class Extension(_Stored):
    days: int
    applicant_consent: bool
    respondent_consent: bool
    consent_record: str
    at: datetime
    by: str


class MediationClock(_Stored):
    started_at: datetime
    due: datetime
    paused_at: datetime | None = None
    pauses: list[Pause] = Field(default_factory=list)
    extension: Extension | None = None
    source: str = "statutory"  # statutory | referral (the referral's own deadline)


class Session(_Stored):
    number: int
    held_at: datetime
    place: str
    participants: list[str] = Field(default_factory=list)
    record: str = ""
    by: str
    action_id: str


class Agreement(_Stored):
    form: str  # oral | written
    amount: float | None = None
    performance_due: date | None = None
    summary: str = ""
    text: str = ""
    judicial_confirmation: bool = False
    judicial_confirmation_due: date | None = None
    at: datetime
    by: str


class Failure(_Stored):
    route: str
    reason: str = ""
    at: datetime
    by: str


class Performance(_Stored):
    performed_on: date
    note: str = ""
    at: datetime
    by: str


class FollowUp(_Stored):
    visited_on: date
    method: str
    satisfied: bool | None = None
    record: str = ""
    at: datetime
    by: str


class DocumentRef(_Stored):
    """Metadata of a file part's document; the content lives at `uri` (a path or URL)."""

    id: str
    part: str
    title: str
    uri: str
    media_type: str | None = None
    sha256: str | None = None
    pages: int | None = None
    added_at: datetime
    by: str


class Transfer(_Stored):
    transfer_id: str
    kind: str
    from_organisation_id: str | None = None
    to_organisation_id: str
    at: datetime
    previous_status: CaseStatus


class DuplicateLink(_Stored):
    submission_id: str
    channel: Channel
    at: datetime
    by: str
    # False for a repeat from a channel without login: nobody has checked that it came
    # from the applicant, so it is shown to the desk but counts as no visit.
    verified: bool = True
    tracking_code: str | None = None  # the anonymous submitter's own receipt


class SubmissionReceipt(_Stored):
    """An anonymous submission linked to an open case: its own tracking code and the
    little it says about itself, so that the submitter follows only what they sent."""

    id: str = Field(alias="_id")  # the submission id
    case_id: str  # the case it was linked to: staff only, never shown to the submitter
    tracking_code: str
    channel: Channel
    county: str
    category: Category
    organisation_id: str | None = None
    received_at: datetime
    acceptance_due: datetime
    request_hash: str


class CaseDoc(_Stored):
    """One case, one document (一案一卷): state, parties, file, history and pending events."""

    id: str = Field(alias="_id")
    tracking_code: str
    status: CaseStatus
    channel: Channel
    county: str
    township: str | None = None
    category: Category
    category_confidence: float = 1.0
    category_source: str = "classifier"  # classifier | desk | applicant | referral
    category_evidence: list[str] = Field(default_factory=list)
    category_suggested: Category | None = None
    risk_level: RiskLevel = RiskLevel.ORDINARY
    risk_signals: list[str] = Field(default_factory=list)
    risk_details: list[RiskSignalDoc] = Field(default_factory=list)
    description: str
    amount: float | None = None
    occurred_on: date | None = None
    address_enc: str | None = None
    external_ref: str | None = None
    related_counties: list[str] = Field(default_factory=list)
    parties: list[StoredParty]
    organisation_id: str | None = None
    routing_reason: str = ""
    assignment: Assignment | None = None
    mediator_id: str | None = None  # top-level copy of assignment.mediator_id (indexed)
    assignment_failure: AssignmentFailure | None = None
    received_at: datetime
    acceptance_due: datetime | None = None
    accepted_at: datetime | None = None
    accepted_by: str | None = None
    case_number: str | None = None
    clock: MediationClock | None = None
    rejection: Rejection | None = None
    sessions: list[Session] = Field(default_factory=list)
    agreement: Agreement | None = None
    failure: Failure | None = None
    performance: Performance | None = None
    follow_up: FollowUp | None = None
    documents: list[DocumentRef] = Field(default_factory=list)
    archived_at: datetime | None = None
    withdrawn_at: datetime | None = None
    withdrawal_reason: str = ""
    transfers: list[Transfer] = Field(default_factory=list)
    referral_id: str | None = None
    referral_due: datetime | None = None
    referral_kind: str | None = None
    nominated_at: datetime | None = None
    nominated_by: str | None = None
    duplicate_links: list[DuplicateLink] = Field(default_factory=list)
    registered_by: str
    request_hash: str | None = None
    history: list[HistoryEntry] = Field(default_factory=list)
    applied: list[str] = Field(default_factory=list)  # ids of actions already applied
    accept_pending: bool = False
    acceptance_intent: dict[str, Any] | None = None
    version: int = 1

    def to_mongo(self) -> dict[str, Any]:
        return to_mongo(self.model_dump(by_alias=True, mode="python"))

    @property
    def mediation_due(self) -> datetime | None:
        return self.clock.due if self.clock else None


def to_mongo(value: Any) -> Any:
    """Python values as BSON can store them: calendar dates become ISO strings."""
    if isinstance(value, dict):
        return {k: to_mongo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_mongo(v) for v in value]
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    return value
