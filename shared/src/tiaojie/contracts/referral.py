"""Events produced by the referral service (topic referral.referrals.v1, keyed by
referral or transfer id) that other services react to.

The referral service defines the rest of its events (reminders, overdue, outcomes, and
what agencies publish on and receive from their own topics) beside these. Personal data
never travels in clear: a referred dispute's submission is encrypted with the platform's
PII key (`submission_enc`, AES-GCM, see tiaojie.runtime.pii.Protector) for intake alone.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from tiaojie.contracts.common import AgencyKind, Category
from tiaojie.contracts.envelope import EventData


class AgencyRegistered(EventData):
    """An agency (court, police, petition bureau, hotline, department) was registered."""

    event_type = "tiaojie.referral.AgencyRegistered"

    agency_id: str
    kind: AgencyKind
    county: str
    name: str
    active: bool = True


class ReferralRequested(EventData):
    """A referral arrived (from an agency or another body) and awaits the receiving
    organisation's answer; `response_due` is the response clock (1 working day)."""

    event_type = "tiaojie.referral.ReferralRequested"

    referral_id: str
    agency_id: str | None = None
    agency_kind: AgencyKind | None = None
    agency_ref: str | None = None
    referral_kind: str
    county: str
    township: str | None = None
    category: Category | None = None
    organisation_id: str
    requested_at: datetime
    response_due: datetime
    due: datetime | None = None


class ReferralDeclined(EventData):
    """The receiving organisation declined; the referral returns to its sender."""

    event_type = "tiaojie.referral.ReferralDeclined"

    referral_id: str
    agency_id: str | None = None
    agency_kind: AgencyKind | None = None
    agency_ref: str | None = None
    county: str
    organisation_id: str
    reason: str
    declined_at: datetime


class ReferralClosed(EventData):
    """The referred dispute ended: resolved, failed or withdrawn; the sender was told."""

    event_type = "tiaojie.referral.ReferralClosed"

    referral_id: str
    agency_id: str | None = None
    agency_kind: AgencyKind | None = None
    agency_ref: str | None = None
    county: str
    case_id: str | None = None
    outcome: str  # resolved | failed | withdrawn
    closed_at: datetime
    agreement_summary: str = ""
    judicial_confirmation_ready: bool = False


class DeadlineReminded(EventData):
    """催办: a configurable share of a referral's or transfer's time was used."""

    event_type = "tiaojie.referral.DeadlineReminded"

    subject_id: str  # referral or transfer id
    subject_kind: str  # referral | transfer
    county: str
    agency_kind: AgencyKind | None = None
    stage: str  # response | handling
    due: datetime
    share_used: float
    reminded_at: datetime


class DeadlineOverdue(EventData):
    """A referral or transfer passed its deadline and was escalated."""

    event_type = "tiaojie.referral.DeadlineOverdue"

    subject_id: str
    subject_kind: str
    county: str
    agency_kind: AgencyKind | None = None
    stage: str
    due: datetime
    overdue_at: datetime
    escalated_to: list[str] = Field(default_factory=list)  # organisation ids told


class DeadlineCleared(EventData):
    """An overdue referral or transfer was answered or closed: it is no longer overdue."""

    event_type = "tiaojie.referral.DeadlineCleared"

    subject_id: str
    subject_kind: str
    county: str
    agency_kind: AgencyKind | None = None
    stage: str
    cleared_at: datetime


class ReferralAccepted(EventData):
    """The receiving organisation accepted a referral: intake creates (or links) the case."""

    event_type = "tiaojie.referral.ReferralAccepted"

    referral_id: str
    agency_id: str | None = None  # None for a hand-over between mediation bodies
    agency_kind: AgencyKind | None = None
    agency_ref: str | None = None  # the agency's own reference: their key, not ours
    referral_kind: str  # delegation | entrustment_ordinary | entrustment_simplified | petition | police | ...
    county: str
    township: str | None = None
    category: Category | None = None
    organisation_id: str
    case_id: str | None = None  # set when the referral links an existing case
    submission_enc: str  # DisputeSubmission JSON, encrypted with the PII key
    due: datetime | None = None  # the referral's own deadline (e.g. 委派 30 days)
    accepted_at: datetime


class TransferRequested(EventData):
    """A body asks another to take over a case (转办 lateral, 交办 down, 上报 up)."""

    event_type = "tiaojie.referral.TransferRequested"

    transfer_id: str
    case_id: str
    county: str
    kind: str  # lateral | assign_down | escalate_up
    from_organisation_id: str | None = None
    to_organisation_id: str
    reason: str = ""
    due: datetime | None = None
    requested_at: datetime


class TransferAccepted(EventData):
    """The receiving body accepted a transfer: intake moves the case, registry reassigns."""

    event_type = "tiaojie.referral.TransferAccepted"

    transfer_id: str
    case_id: str
    county: str
    kind: str
    from_organisation_id: str | None = None
    to_organisation_id: str
    due: datetime | None = None
    accepted_at: datetime
    risk_level: str | None = None
    category: Category | None = None
    party_keys: list[str] = Field(default_factory=list)


class TransferDeclined(EventData):
    """The receiving body declined a transfer; the case stays with the sender."""

    event_type = "tiaojie.referral.TransferDeclined"

    transfer_id: str
    case_id: str
    county: str
    to_organisation_id: str
    reason: str
    declined_at: datetime


__all__ = [
    "AgencyRegistered",
    "DeadlineCleared",
    "DeadlineOverdue",
    "DeadlineReminded",
    "ReferralAccepted",
    "ReferralClosed",
    "ReferralDeclined",
    "ReferralRequested",
    "TransferAccepted",
    "TransferDeclined",
    "TransferRequested",
]
