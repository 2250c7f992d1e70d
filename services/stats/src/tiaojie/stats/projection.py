"""Pure projection rules: how one event changes what stats knows of a case or a referral.

Each rule is a function (document before, event) -> document after with no I/O, written
so that applying events is idempotent and order-independent: milestones keep the
earliest time they were reached, the status is the one of the latest event (ties broken
by lifecycle rank), deadlines and overdue marks are last-writer-wins by event time. A
redelivered, replayed or reordered stream therefore yields the same documents, which is
what makes the figures exact.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tiaojie.contracts.common import CaseStatus, RiskLevel
from tiaojie.contracts.envelope import EventData
from tiaojie.contracts.intake import (
    AgreementPerformed,
    CaseAccepted,
    CaseArchived,
    CaseAssignmentRecorded,
    CaseEvent,
    CaseFailed,
    CaseRegistered,
    CaseRejected,
    CaseResolved,
    CaseTransferred,
    CaseWithdrawn,
    DeadlineChanged,
    FollowUpRecorded,
    RiskRaised,
    SessionRecorded,
)
from tiaojie.contracts.referral import (
    DeadlineCleared,
    DeadlineOverdue,
    ReferralAccepted,
    ReferralClosed,
    ReferralDeclined,
    ReferralRequested,
    TransferAccepted,
    TransferDeclined,
    TransferRequested,
)
from tiaojie.contracts.registry import AssignmentFailed
from tiaojie.stats.calendar import local_day, month_of

Doc = dict[str, Any]

# Milestones of a case: the field holding the earliest time it was reached.
MILESTONES = (
    "received_at",
    "accepted_at",
    "rejected_at",
    "assigned_at",
    "first_session_at",
    "resolved_at",
    "failed_at",
    "performed_at",
    "followed_up_at",
    "archived_at",
    "withdrawn_at",
    "transferred_at",
)
# Stages timed from registration (Prometheus tiaojie_case_stage_seconds and the summary).
STAGES = {
    "accept": "accepted_at",
    "assign": "assigned_at",
    "first_session": "first_session_at",
    "resolve": "concluded_at",  # 调结: concluded, with or without agreement
}
_RANK = {
    CaseStatus.RECEIVED: 0,
    CaseStatus.ACCEPTED: 1,
    CaseStatus.REJECTED: 1,
    CaseStatus.TRANSFERRED: 2,
    CaseStatus.ASSIGNED: 2,
    CaseStatus.IN_MEDIATION: 3,
    CaseStatus.RESOLVED: 4,
    CaseStatus.FAILED: 4,
    CaseStatus.WITHDRAWN: 4,
    CaseStatus.FOLLOWED_UP: 5,
    CaseStatus.ARCHIVED: 6,
}
OPEN_STATUSES = frozenset(
    {
        CaseStatus.RECEIVED,
        CaseStatus.ACCEPTED,
        CaseStatus.ASSIGNED,
        CaseStatus.IN_MEDIATION,
        CaseStatus.TRANSFERRED,
    }
)
AWAITING_ACCEPTANCE = frozenset({CaseStatus.RECEIVED})
IN_HANDLING = frozenset(
    {CaseStatus.ACCEPTED, CaseStatus.ASSIGNED, CaseStatus.IN_MEDIATION, CaseStatus.TRANSFERRED}
)
CONCLUDED = frozenset({CaseStatus.RESOLVED, CaseStatus.FAILED})

_RISK_RANK = {RiskLevel.ORDINARY: 0, RiskLevel.SERIOUS: 1, RiskLevel.GRAVE: 2}

_MILESTONE_OF: dict[type[EventData], str] = {
    CaseAccepted: "accepted_at",
    CaseRejected: "rejected_at",
    CaseResolved: "resolved_at",
    CaseFailed: "failed_at",
    AgreementPerformed: "performed_at",
    FollowUpRecorded: "followed_up_at",
    CaseArchived: "archived_at",
    CaseWithdrawn: "withdrawn_at",
    CaseTransferred: "transferred_at",
}


def _earliest(doc: Doc, field: str, at: datetime | None) -> None:
    if at is None:
        return
    current = doc.get(field)
    if current is None or at < current:
        doc[field] = at


def _fill(doc: Doc, **fields: Any) -> None:
    """Set descriptive fields an event carries (None never erases what is known)."""
    for key, value in fields.items():
        if value is not None:
            doc[key] = str(value) if hasattr(value, "value") else value


def _status(doc: Doc, status: CaseStatus | str, at: datetime) -> None:
    status = CaseStatus(status)
    mark = (at, _RANK.get(status, 0))
    current_at = doc.get("status_at")
    current = (current_at, doc.get("status_rank", -1)) if current_at is not None else None
    if current is None or mark >= current:
        doc["status"] = str(status)
        doc["status_at"] = at
        doc["status_rank"] = mark[1]


def _clock(doc: Doc, clock: str, due: datetime | None, change: str, at: datetime) -> None:
    """Last writer wins by event time for each statutory clock."""
    stamp = f"{clock}_clock_at"
    if doc.get(stamp) is not None and at < doc[stamp]:
        return
    doc[stamp] = at
    doc[f"{clock}_paused"] = change == "paused"
    if due is not None or change == "paused":
        doc[f"{clock}_due"] = due if due is not None else doc.get(f"{clock}_due")


def apply_case_event(before: Doc | None, data: EventData) -> Doc:
    """The case document after one event (a new dict; `before` is not changed)."""
    doc: Doc = dict(before or {})
    if isinstance(data, CaseRegistered):
        _fill(
            doc,
            county=data.county,
            township=data.township,
            channel=data.channel,
            category=data.category,
            organisation_id=doc.get("organisation_id") or data.organisation_id,
            parties_count=data.parties_count,
            referral_id=data.referral_id,
            duplicate_of=data.duplicate_of,
            amount=data.amount,
        )
        _riskiest(doc, data.risk_level)
        doc["party_keys"] = sorted(set(doc.get("party_keys", [])) | set(data.party_keys))
        _earliest(doc, "received_at", data.received_at)
        if data.acceptance_due is not None:
            _clock(doc, "acceptance", data.acceptance_due, "set", data.received_at)
        _status(doc, CaseStatus.RECEIVED, data.received_at)
    elif isinstance(data, CaseEvent):
        _apply_lifecycle(doc, data)
    elif isinstance(data, AssignmentFailed):
        _fill(doc, county=data.county)
        if doc.get("assigned_at") is None:
            doc["assignment_failed"] = True
    else:
        raise TypeError(f"not a case event: {type(data).__name__}")
    return derive_case(doc)


def _apply_lifecycle(doc: Doc, data: CaseEvent) -> None:
    latest = doc.get("status_at") is None or data.at >= doc["status_at"]
    # Where the case is now: the latest event knows best; earlier ones only fill gaps.
    if latest:
        _fill(
            doc,
            county=data.county,
            township=data.township,
            category=data.category,
            organisation_id=data.organisation_id,
        )
    else:
        for key in ("county", "township", "category", "organisation_id"):
            if doc.get(key) is None and getattr(data, key) is not None:
                doc[key] = str(getattr(data, key))
    _status(doc, data.status, data.at)
    field = _MILESTONE_OF.get(type(data))
    if field:
        _earliest(doc, field, data.at)
    if isinstance(data, CaseAccepted):
        _clock(doc, "mediation", data.mediation_due, "set", data.at)
        doc["case_number"] = data.case_number
    elif isinstance(data, CaseAssignmentRecorded):
        _assignment(doc, data)
    elif isinstance(data, SessionRecorded):
        _earliest(doc, "first_session_at", data.held_at)
        doc["sessions"] = max(doc.get("sessions", 0), data.session_number)
    elif isinstance(data, CaseResolved):
        doc["agreement_form"] = data.agreement_form
        if data.amount is not None:
            doc["agreement_amount"] = data.amount
    elif isinstance(data, CaseFailed):
        doc["failed_route"] = data.route
    elif isinstance(data, CaseWithdrawn):
        doc["withdrawn_stage"] = str(data.previous_status)
    elif isinstance(data, CaseRejected):
        doc["rejected_reason"] = data.reason_code
    elif isinstance(data, DeadlineChanged):
        _clock(doc, data.clock, data.due, data.change, data.at)
    elif isinstance(data, RiskRaised):
        _riskiest(doc, data.risk_level)
        doc["party_keys"] = sorted(set(doc.get("party_keys", [])) | set(data.party_keys))


def _assignment(doc: Doc, data: CaseAssignmentRecorded) -> None:
    """The case became assigned: its time and mediator come from intake's record alone.

    The registry's MediatorAssigned is a proposal made at registration, before acceptance
    (docs/architecture.md), so its time would make acceptance-to-assignment negative. The
    earliest record wins (a reassignment later keeps the first time and its mediator).
    A projection stored before this rule (no `assignment_recorded`) may hold the registry's
    proposal: the first record of intake replaces it."""
    recorded = doc.get("assignment_recorded") is True and doc.get("assigned_at") is not None
    if not recorded or data.at < doc["assigned_at"]:
        doc["assigned_at"] = data.at
        doc["mediator_id"] = data.mediator_id
    doc["assignment_recorded"] = True
    doc["assignment_failed"] = False


def _riskiest(doc: Doc, level: RiskLevel | str | None) -> None:
    """The most severe risk level known: a replayed registration never lowers a raised risk."""
    if level is None:
        return
    level = RiskLevel(level)
    current = doc.get("risk_level")
    if current is None or _RISK_RANK[level] > _RISK_RANK.get(RiskLevel(current), -1):
        doc["risk_level"] = str(level)


def derive_case(doc: Doc) -> Doc:
    """Fields computed from the others: conclusion, openness, the months it touched."""
    concluded = [doc[f] for f in ("resolved_at", "failed_at") if doc.get(f) is not None]
    doc["concluded_at"] = min(concluded) if concluded else None
    status = doc.get("status")
    doc["open"] = status in OPEN_STATUSES and doc.get("received_at") is not None
    received = doc.get("received_at")
    doc["received_day"] = local_day(received).isoformat() if received else None
    doc["months"] = sorted({month_of(local_day(doc[f])) for f in MILESTONES if doc.get(f) is not None})
    return doc


def stage_seconds(doc: Doc, stage: str) -> float | None:
    """Seconds from registration to a stage, if both are known."""
    received = doc.get("received_at")
    reached = doc.get(STAGES[stage])
    if received is None or reached is None:
        return None
    return max(0.0, (reached - received).total_seconds())


def overdue_stage(doc: Doc, now: datetime) -> str | None:
    """'acceptance' or 'mediation' when an open case's running clock has passed."""
    status = doc.get("status")
    if status in AWAITING_ACCEPTANCE:
        due, paused = doc.get("acceptance_due"), doc.get("acceptance_paused")
        return "acceptance" if due is not None and not paused and due < now else None
    if status in IN_HANDLING:
        due, paused = doc.get("mediation_due"), doc.get("mediation_paused")
        return "mediation" if due is not None and not paused and due < now else None
    return None


# -- referrals and transfers ---------------------------------------------------------------


def apply_handover_event(before: Doc | None, data: EventData) -> Doc:
    """The referral (or transfer) document after one event from referral.referrals.v1."""
    doc: Doc = dict(before or {})
    if isinstance(data, ReferralRequested):
        doc["kind"] = "referral"
        _fill(
            doc,
            agency_id=data.agency_id,
            agency_kind=data.agency_kind,
            referral_kind=data.referral_kind,
            county=data.county,
            township=data.township,
            category=data.category,
            organisation_id=data.organisation_id,
        )
        _earliest(doc, "requested_at", data.requested_at)
        _fill(doc, response_due=data.response_due, due=data.due)
    elif isinstance(data, ReferralAccepted):
        doc["kind"] = "referral"
        _fill(
            doc,
            agency_id=data.agency_id,
            agency_kind=data.agency_kind,
            referral_kind=data.referral_kind,
            county=data.county,
            township=data.township,
            category=data.category,
            organisation_id=data.organisation_id,
            case_id=data.case_id,
            due=data.due,
        )
        _earliest(doc, "accepted_at", data.accepted_at)
    elif isinstance(data, ReferralDeclined):
        doc["kind"] = "referral"
        _fill(doc, agency_id=data.agency_id, agency_kind=data.agency_kind, county=data.county)
        _earliest(doc, "declined_at", data.declined_at)
    elif isinstance(data, ReferralClosed):
        doc["kind"] = "referral"
        _fill(
            doc,
            agency_id=data.agency_id,
            agency_kind=data.agency_kind,
            county=data.county,
            case_id=data.case_id,
        )
        _earliest(doc, "closed_at", data.closed_at)
        doc["outcome"] = data.outcome
    elif isinstance(data, TransferRequested):
        doc["kind"] = "transfer"
        _fill(
            doc,
            county=data.county,
            case_id=data.case_id,
            transfer_kind=data.kind,
            organisation_id=data.to_organisation_id,
            from_organisation_id=data.from_organisation_id,
            due=data.due,
        )
        _earliest(doc, "requested_at", data.requested_at)
    elif isinstance(data, TransferAccepted):
        doc["kind"] = "transfer"
        _fill(doc, county=data.county, case_id=data.case_id, transfer_kind=data.kind)
        _earliest(doc, "accepted_at", data.accepted_at)
    elif isinstance(data, TransferDeclined):
        doc["kind"] = "transfer"
        _fill(doc, county=data.county, case_id=data.case_id)
        _earliest(doc, "declined_at", data.declined_at)
    elif isinstance(data, DeadlineOverdue):
        doc.setdefault("kind", data.subject_kind)
        _fill(doc, county=data.county, agency_kind=data.agency_kind)
        _mark(doc, f"overdue_{data.stage}_at", data.overdue_at)
    elif isinstance(data, DeadlineCleared):
        doc.setdefault("kind", data.subject_kind)
        _fill(doc, county=data.county, agency_kind=data.agency_kind)
        _mark(doc, f"cleared_{data.stage}_at", data.cleared_at)
    else:
        raise TypeError(f"not a referral event: {type(data).__name__}")
    return derive_handover(doc)


def _mark(doc: Doc, field: str, at: datetime) -> None:
    """Latest time of a recurring mark (overdue, cleared)."""
    if doc.get(field) is None or at > doc[field]:
        doc[field] = at


def derive_handover(doc: Doc) -> Doc:
    answered = [doc[f] for f in ("accepted_at", "declined_at") if doc.get(f) is not None]
    doc["answered_at"] = min(answered) if answered else None
    stages = {k[len("overdue_") : -len("_at")] for k in doc if k.startswith("overdue_") and k.endswith("_at")}
    overdue = sorted(
        s
        for s in stages
        if doc.get(f"overdue_{s}_at") is not None
        and (doc.get(f"cleared_{s}_at") is None or doc[f"cleared_{s}_at"] < doc[f"overdue_{s}_at"])
    )
    doc["overdue_stages"] = overdue
    doc["open"] = doc.get("closed_at") is None and doc.get("declined_at") is None
    doc["months"] = sorted(
        {
            month_of(local_day(doc[f]))
            for f in ("requested_at", "accepted_at", "declined_at", "closed_at")
            if doc.get(f) is not None
        }
    )
    return doc


def response_seconds(doc: Doc) -> float | None:
    if doc.get("requested_at") is None or doc.get("answered_at") is None:
        return None
    return max(0.0, (doc["answered_at"] - doc["requested_at"]).total_seconds())
