"""Documents the referral service stores: agencies, referrals, transfers, their timers,
and the projection of cases learnt from intake's events (organisations are the
runtime's directory)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tiaojie.contracts.common import AgencyKind, Category


class Timer(BaseModel):
    """A reminder (催办) or overdue escalation of one stage, kept inside its subject."""

    model_config = ConfigDict(extra="ignore")

    stage: str  # response | handling
    action: str  # remind | overdue
    at: datetime  # when it fires
    due: datetime  # the deadline it watches
    start: datetime  # when that clock started
    state: str = "pending"  # pending | fired | cancelled
    fired_at: datetime | None = None


class Hop(BaseModel):
    """One step in a referral's or transfer's history: who did what, where it stands."""

    model_config = ConfigDict(extra="ignore")

    at: datetime
    action: str
    by: str
    status: str
    organisation_id: str | None = None
    note: str = ""


class Extension(BaseModel):
    model_config = ConfigDict(extra="ignore")

    at: datetime
    by: str
    days: int
    previous_due: datetime
    due: datetime
    reason: str = ""


class Subject(BaseModel):
    """What referrals and transfers share: versioned state, clocks, timers, history."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(alias="_id")
    version: int = 0
    status: str
    county: str
    organisation_id: str | None = None  # the body that holds it now
    clock_kind: str  # which handling rule applies (a referral kind, or "mediation")
    response_due: datetime
    due: datetime | None = None  # handling deadline, once accepted
    extensions: list[Extension] = Field(default_factory=list)
    timers: dict[str, Timer] = Field(default_factory=dict)
    overdue: bool = False  # indexed: the overdue gauge counts these
    overdue_stages: list[str] = Field(default_factory=list)
    history: list[Hop] = Field(default_factory=list)
    # Indexed: the UTC day on which the timer sweep looks at it (its earliest pending
    # timer, never before the day of the change that set it); None without pending timers.
    timer_day: str | None = None

    def to_mongo(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="python")


class ReferralDoc(Subject):
    """A dispute handed to mediation by an agency (the closed loop answers the agency)."""

    agency_id: str | None = None
    agency_kind: AgencyKind | None = None
    agency_ref: str | None = None
    referral_kind: str
    township: str | None = None
    category: Category | None = None
    parties_count: int = 1
    submission_enc: str  # DisputeSubmission JSON, AES-GCM: personal data never in clear
    linked_case_id: str | None = None  # an existing case the agency asked to link
    note: str = ""
    requested_at: datetime
    accepted_at: datetime | None = None
    answered_at: datetime | None = None
    decline_reason: str | None = None
    case_id: str | None = None
    mediator_assigned: bool = False
    outcome: str | None = None  # resolved | failed | withdrawn
    closed_at: datetime | None = None
    agreement_summary: str = ""
    judicial_confirmation_ready: bool = False
    source_event_id: str | None = None


class TransferDoc(Subject):
    """A case handed between mediation bodies: 转办 (lateral), 交办 (down), 上报 (up)."""

    case_id: str
    kind: str  # lateral | assign_down | escalate_up
    reason_code: str = ""
    reason: str = ""
    from_organisation_id: str | None = None
    to_organisation_id: str
    to_county: str  # the receiving body's county: its staff answer the transfer
    requested_by: str
    requested_at: datetime
    accepted_at: datetime | None = None
    decline_reason: str | None = None
    due_days: int | None = None
    outcome: str | None = None
    closed_at: datetime | None = None


class AgencyDoc(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(alias="_id")
    version: int = 0
    kind: AgencyKind
    county: str
    name: str
    source: str  # the CloudEvents source its events must carry
    active: bool = True
    registered_at: datetime
    registered_by: str
    # Its SCRAM user at the broker (the password is kept by the broker alone, salted),
    # and the number of the credential change that issued it.
    kafka_principal: str | None = None
    credential_seq: int = 0
    # AgencyRegistered went out (after its topics and access existed); agencies stored
    # before this field were announced through their outbox.
    announced: bool = True

    def to_mongo(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="python")


# Case statuses after which nothing is handed over any more.
CASE_CLOSED = frozenset({"resolved", "failed", "withdrawn", "archived", "rejected", "followed_up"})


class CaseView(BaseModel):
    """What transfers need of a case (from intake.cases.v1): where it is, who holds it,
    whether it ended, and what a receiving body is told of it."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(alias="_id")
    county: str
    category: Category | None = None
    organisation_id: str | None = None
    risk_level: str = "ordinary"
    party_keys: list[str] = Field(default_factory=list)
    ended: bool = False

    @model_validator(mode="before")
    @classmethod
    def _from_status(cls, data: Any) -> Any:
        # Projections written before `ended` kept the case's status instead.
        if isinstance(data, dict) and "ended" not in data and "status" in data:
            return {**data, "ended": str(data["status"]) in CASE_CLOSED}
        return data
