"""Events of the referral service and the contract agencies integrate against.

- referral.referrals.v1 (keyed by referral or transfer id): the referral and transfer
  lifecycle, reminders (催办), overdue escalations; other services react to these.
- agency.<agency-id>.referrals.v1: what an agency publishes (AgencyReferralSubmitted), a
  CloudEvent whose `source` must be the agency's registered source ("/agencies/<id>").
- agency.<agency-id>.outcomes.v1: what we answer the agency (the Agency* notices below),
  every one carrying the agency's own reference (`agency_ref`: their key, not ours).

Personal data never travels in clear on our topics: a referred dispute's submission is
encrypted with the platform's PII key (`submission_enc`, AES-GCM, see
tiaojie.runtime.pii.Protector) for intake alone. Notices to an agency carry no party data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from tiaojie.contracts.common import AgencyKind, Category
from tiaojie.contracts.envelope import EventData
from tiaojie.contracts.intake import DisputeSubmission

AGENCY_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
AGENCY_REF_PATTERN = r"^[A-Za-z0-9\u4e00-\u9fff()（）〔〕\[\]_./:#-]{1,100}$"

# Kinds of referral and the statutory clock each one runs on (see the referral service).
ReferralKind = Literal[
    "delegation",  # 委派: court, before filing (诉前调解), 30 days, extendable by agreement
    "entrustment_ordinary",  # 委托: court, after filing, ordinary procedure, 15 days
    "entrustment_simplified",  # 委托: court, after filing, simplified procedure, 7 days
    "petition",  # 访调: petition bureau, 60 days (信访工作条例), extendable once by 30
    "police",  # 警调: police, configurable default
    "hotline",  # 12345 hotline, configurable default
    "government",  # other government departments, configurable default
]


class AgencyRegistered(EventData):
    """An agency (court, police, petition bureau, hotline, department) was registered."""

    event_type = "tiaojie.referral.AgencyRegistered"

    agency_id: str
    kind: AgencyKind
    county: str
    name: str
    active: bool = True


class AgencyDeactivated(EventData):
    """An agency (or submitting system) was deactivated: its broker credential and ACLs are
    gone, and anything still on its topic is dead-lettered as from an unknown agency."""

    event_type = "tiaojie.referral.AgencyDeactivated"

    agency_id: str
    kind: AgencyKind
    county: str
    at: datetime


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


class ReferralInMediation(EventData):
    """The referred dispute's case has a mediator: mediation is under way."""

    event_type = "tiaojie.referral.ReferralInMediation"

    referral_id: str
    agency_id: str | None = None
    agency_kind: AgencyKind | None = None
    agency_ref: str | None = None
    county: str
    case_id: str
    organisation_id: str | None = None
    at: datetime


class DeadlineExtended(EventData):
    """A referral's or transfer's handling deadline was extended (by agreement, or once
    for a petition), with the new due time."""

    event_type = "tiaojie.referral.DeadlineExtended"

    subject_id: str
    subject_kind: str  # referral | transfer
    county: str
    agency_kind: AgencyKind | None = None
    stage: str
    previous_due: datetime
    due: datetime
    reason: str = ""
    extended_at: datetime


class TransferCompleted(EventData):
    """A supervised transfer (交办) ended because its case was closed."""

    event_type = "tiaojie.referral.TransferCompleted"

    transfer_id: str
    case_id: str
    county: str
    kind: str
    outcome: str  # resolved | failed | withdrawn
    completed_at: datetime


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


# -- what agencies publish (agency.<agency-id>.referrals.v1) ----------------------------


class AgencyReferralSubmitted(EventData):
    """An agency hands a dispute to mediation. The envelope's `source` must be the agency's
    registered source; `agency_ref` is the agency's own reference (their key), unique per
    agency: sending the same reference again is answered as the same referral."""

    event_type = "tiaojie.agency.AgencyReferralSubmitted"
    model_config = ConfigDict(frozen=True, extra="forbid")

    agency_ref: str = Field(pattern=AGENCY_REF_PATTERN)
    referral_kind: ReferralKind
    submission: DisputeSubmission
    organisation_id: str | None = Field(default=None, max_length=100)  # a named receiving body
    case_id: str | None = Field(default=None, max_length=100)  # links an existing case
    note: str = Field(default="", max_length=500)  # no personal data, please


# -- what agencies receive (agency.<agency-id>.outcomes.v1) ------------------------------


class AgencyNotice(EventData):
    """Fields of every notice to an agency."""

    referral_id: str | None = None  # ours; None only when the submission itself was refused
    agency_id: str
    agency_ref: str | None = None  # yours, whenever it could be read
    status: str
    at: datetime


class AgencyReferralReceived(AgencyNotice):
    """We received your referral; the receiving body answers by `response_due`."""

    event_type = "tiaojie.agency.AgencyReferralReceived"

    organisation_id: str
    response_due: datetime


class AgencyReferralRejected(AgencyNotice):
    """Your event was refused before it became a referral (it is in our DLQ)."""

    event_type = "tiaojie.agency.AgencyReferralRejected"

    reason: str  # malformed_envelope | source_mismatch | unknown_type | invalid_payload
    detail: str = ""  # which fields and why; never a value you sent
    event_id: str | None = None  # the id of your event, when it could be read


class AgencyReferralAccepted(AgencyNotice):
    """The receiving body accepted: a case is opened; the handling clock runs to `due`."""

    event_type = "tiaojie.agency.AgencyReferralAccepted"

    organisation_id: str
    due: datetime | None = None


class AgencyReferralDeclined(AgencyNotice):
    """The receiving body declined, with its reason: the dispute returns to you."""

    event_type = "tiaojie.agency.AgencyReferralDeclined"

    organisation_id: str
    reason: str


class AgencyReferralInMediation(AgencyNotice):
    """A mediator was assigned: mediation is under way."""

    event_type = "tiaojie.agency.AgencyReferralInMediation"

    case_id: str
    organisation_id: str | None = None


class AgencyReferralExtended(AgencyNotice):
    """The handling deadline was extended (by agreement, or once for a petition)."""

    event_type = "tiaojie.agency.AgencyReferralExtended"

    previous_due: datetime
    due: datetime
    reason: str = ""


class AgencyReferralClosed(AgencyNotice):
    """The outcome: resolved (with the agreement summary; ready for 司法确认 when it came
    from a court), failed (you proceed: the court files the case, the bureau handles it),
    or withdrawn."""

    event_type = "tiaojie.agency.AgencyReferralClosed"

    outcome: str  # resolved | failed | withdrawn
    case_id: str | None = None
    agreement_summary: str = ""
    judicial_confirmation_ready: bool = False
    route: str = ""  # for failed: litigation | arbitration | administrative | other
    reason: str = ""


AGENCY_NOTICES: tuple[type[AgencyNotice], ...] = (
    AgencyReferralReceived,
    AgencyReferralRejected,
    AgencyReferralAccepted,
    AgencyReferralDeclined,
    AgencyReferralInMediation,
    AgencyReferralExtended,
    AgencyReferralClosed,
)


__all__ = [
    "AGENCY_NOTICES",
    "AgencyDeactivated",
    "AgencyNotice",
    "AgencyReferralAccepted",
    "AgencyReferralClosed",
    "AgencyReferralDeclined",
    "AgencyReferralExtended",
    "AgencyReferralInMediation",
    "AgencyReferralReceived",
    "AgencyReferralRejected",
    "AgencyReferralSubmitted",
    "AgencyRegistered",
    "DeadlineCleared",
    "DeadlineExtended",
    "DeadlineOverdue",
    "DeadlineReminded",
    "ReferralAccepted",
    "ReferralClosed",
    "ReferralDeclined",
    "ReferralInMediation",
    "ReferralKind",
    "ReferralRequested",
    "TransferAccepted",
    "TransferCompleted",
    "TransferDeclined",
    "TransferRequested",
]
