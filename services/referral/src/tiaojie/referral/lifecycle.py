"""The referral and transfer state machines: pure functions from a state to the next
state and the events it causes (no database, no Kafka: every transition is unit-tested).

Referral: requested → accepted → in_mediation → resolved | failed | withdrawn;
requested → declined (returned to the sender). Transfer (转办/交办/上报): requested →
accepted | declined; an accepted 交办 stays supervised until its case closes (completed).
A transition that was already applied returns None (redelivered input: no second effect);
one that the state forbids raises IllegalTransition.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tiaojie.contracts import topics
from tiaojie.contracts.common import AgencyKind
from tiaojie.contracts.envelope import EventData
from tiaojie.contracts.referral import (
    AgencyReferralAccepted,
    AgencyReferralClosed,
    AgencyReferralDeclined,
    AgencyReferralExtended,
    AgencyReferralInMediation,
    AgencyReferralReceived,
    DeadlineCleared,
    DeadlineExtended,
    DeadlineOverdue,
    DeadlineReminded,
    ReferralAccepted,
    ReferralClosed,
    ReferralDeclined,
    ReferralInMediation,
    ReferralRequested,
    TransferAccepted,
    TransferCompleted,
    TransferDeclined,
    TransferRequested,
)
from tiaojie.referral.deadlines import HANDLING, OVERDUE, REMIND, RESPONSE, DeadlineRules
from tiaojie.referral.models import CaseView, Extension, Hop, ReferralDoc, Subject, TransferDoc
from tiaojie.runtime.errors import IllegalTransition

REQUESTED = "requested"
ACCEPTED = "accepted"
DECLINED = "declined"
IN_MEDIATION = "in_mediation"
RESOLVED = "resolved"
FAILED = "failed"
WITHDRAWN = "withdrawn"
COMPLETED = "completed"
CLOSED = frozenset({DECLINED, RESOLVED, FAILED, WITHDRAWN, COMPLETED})
OUTCOMES = frozenset({RESOLVED, FAILED, WITHDRAWN})

STATUS_LABELS = {
    REQUESTED: "待接收",
    ACCEPTED: "已接收",
    DECLINED: "已退回",
    IN_MEDIATION: "调解中",
    RESOLVED: "调解成功",
    FAILED: "调解不成",
    WITHDRAWN: "已撤回",
    COMPLETED: "已办结",
}
ACTION_LABELS = {
    "accept": "接收",
    "decline": "退回",
    "extend": "延长期限",
    "close": "办结",
    "mediate": "开始调解",
}
TRANSFER_KINDS = {"lateral": "转办", "assign_down": "交办", "escalate_up": "上报"}


@dataclass(frozen=True)
class Effect:
    """An event a transition causes: on which topic, keyed by what."""

    topic: str
    data: EventData
    key: str


def _illegal(doc: Subject, action: str) -> IllegalTransition:
    return IllegalTransition(
        current=doc.status, action=action, current_zh=STATUS_LABELS.get(doc.status, doc.status)
    )


def _subject_kind(doc: Subject) -> str:
    return "referral" if isinstance(doc, ReferralDoc) else "transfer"


def _agency_kind(doc: Subject) -> AgencyKind | None:
    return doc.agency_kind if isinstance(doc, ReferralDoc) else None


def _notice(doc: ReferralDoc, model: type[EventData], **fields: object) -> list[Effect]:
    """The same step told to the agency on its own topic, keyed by its own reference."""
    if not doc.agency_id:
        return []
    data = model.model_validate(
        {"referral_id": doc.id, "agency_id": doc.agency_id, "agency_ref": doc.agency_ref, **fields}
    )
    return [Effect(topics.agency_outcomes(doc.agency_id), data, doc.agency_ref or doc.id)]


# -- clocks shared by referrals and transfers ---------------------------------------------


def _start_stage(doc: Subject, rules: DeadlineRules, stage: str, *, start: datetime, due: datetime) -> None:
    for key in [k for k, t in doc.timers.items() if t.stage == stage]:
        del doc.timers[key]
    doc.timers.update(rules.timers(stage, start=start, due=due))


def _stop_stage(doc: Subject, stage: str, now: datetime) -> list[Effect]:
    """Cancel a stage's pending timers; if it was overdue, it no longer is."""
    for timer in doc.timers.values():
        if timer.stage == stage and timer.state == "pending":
            timer.state = "cancelled"
    if stage not in doc.overdue_stages:
        return []
    doc.overdue_stages = [s for s in doc.overdue_stages if s != stage]
    doc.overdue = bool(doc.overdue_stages)
    cleared = DeadlineCleared(
        subject_id=doc.id,
        subject_kind=_subject_kind(doc),
        county=doc.county,
        agency_kind=_agency_kind(doc),
        stage=stage,
        cleared_at=now,
    )
    return [Effect(topics.REFERRALS, cleared, doc.id)]


def fire(doc: Subject, key: str, *, now: datetime, escalate_to: list[str]) -> list[Effect] | None:
    """A due timer fires once: 催办 (reminder), or overdue with escalation."""
    timer = doc.timers.get(key)
    if timer is None or timer.state != "pending" or timer.at > now:
        return None
    timer.state = "fired"
    timer.fired_at = now
    kind = _subject_kind(doc)
    if timer.action == REMIND:
        span = (timer.due - timer.start).total_seconds()
        share = (now - timer.start).total_seconds() / span if span > 0 else 1.0
        event: EventData = DeadlineReminded(
            subject_id=doc.id,
            subject_kind=kind,
            county=doc.county,
            agency_kind=_agency_kind(doc),
            stage=timer.stage,
            due=timer.due,
            share_used=round(min(share, 1.0), 3),
            reminded_at=now,
        )
        note = "催办"
    else:
        if timer.stage not in doc.overdue_stages:
            doc.overdue_stages = [*doc.overdue_stages, timer.stage]
        doc.overdue = True
        event = DeadlineOverdue(
            subject_id=doc.id,
            subject_kind=kind,
            county=doc.county,
            agency_kind=_agency_kind(doc),
            stage=timer.stage,
            due=timer.due,
            overdue_at=now,
            escalated_to=escalate_to,
        )
        note = "逾期，已报告" + "、".join(escalate_to) if escalate_to else "逾期"
    doc.history.append(
        Hop(
            at=now, action=f"{timer.stage}-{timer.action}", by="system:referral", status=doc.status, note=note
        )
    )
    return [Effect(topics.REFERRALS, event, doc.id)]


def extend(
    doc: Subject,
    rules: DeadlineRules,
    *,
    days: int,
    by_agreement: bool,
    reason: str,
    by: str,
    now: datetime,
) -> list[Effect]:
    """Extend the handling deadline (by agreement, or once for a petition)."""
    if doc.status not in (ACCEPTED, IN_MEDIATION) or doc.due is None:
        raise _illegal(doc, "延长期限")
    previous = doc.due
    due = rules.extended_due(
        doc.clock_kind,
        due=previous,
        days=days,
        by_agreement=by_agreement,
        extensions_so_far=len(doc.extensions),
    )
    doc.extensions.append(Extension(at=now, by=by, days=days, previous_due=previous, due=due, reason=reason))
    doc.due = due
    effects = _stop_stage(doc, HANDLING, now) if due > now else []
    start = doc.timers[f"{HANDLING}-{OVERDUE}"].start if f"{HANDLING}-{OVERDUE}" in doc.timers else now
    _start_stage(doc, rules, HANDLING, start=start, due=due)
    if f"{HANDLING}-{REMIND}" in doc.timers and doc.timers[f"{HANDLING}-{REMIND}"].at <= now:
        # The reminder share of the new span is already used: no second 催办 at once.
        doc.timers[f"{HANDLING}-{REMIND}"].state = "cancelled"
    doc.history.append(
        Hop(
            at=now,
            action="extend",
            by=by,
            status=doc.status,
            organisation_id=doc.organisation_id,
            note=reason,
        )
    )
    effects.append(
        Effect(
            topics.REFERRALS,
            DeadlineExtended(
                subject_id=doc.id,
                subject_kind=_subject_kind(doc),
                county=doc.county,
                agency_kind=_agency_kind(doc),
                stage=HANDLING,
                previous_due=previous,
                due=due,
                reason=reason,
                extended_at=now,
            ),
            doc.id,
        )
    )
    if isinstance(doc, ReferralDoc):
        effects += _notice(
            doc,
            AgencyReferralExtended,
            status=doc.status,
            at=now,
            previous_due=previous,
            due=due,
            reason=reason,
        )
    return effects


# -- referrals ------------------------------------------------------------------------------


def received(doc: ReferralDoc, rules: DeadlineRules, *, now: datetime) -> list[Effect]:
    """A new referral: the response clock starts; the sender gets a receipt."""
    doc.status = REQUESTED
    doc.response_due = rules.response_due(now)
    _start_stage(doc, rules, RESPONSE, start=now, due=doc.response_due)
    by = f"agency:{doc.agency_id}" if doc.agency_id else "system:referral"
    doc.history.append(
        Hop(at=now, action="request", by=by, status=REQUESTED, organisation_id=doc.organisation_id)
    )
    assert doc.organisation_id is not None
    requested = ReferralRequested(
        referral_id=doc.id,
        agency_id=doc.agency_id,
        agency_kind=doc.agency_kind,
        agency_ref=doc.agency_ref,
        referral_kind=doc.referral_kind,
        county=doc.county,
        township=doc.township,
        category=doc.category,
        organisation_id=doc.organisation_id,
        requested_at=now,
        response_due=doc.response_due,
    )
    return [
        Effect(topics.REFERRALS, requested, doc.id),
        *_notice(
            doc,
            AgencyReferralReceived,
            status=REQUESTED,
            at=now,
            organisation_id=doc.organisation_id,
            response_due=doc.response_due,
        ),
    ]


def accept(
    doc: ReferralDoc, rules: DeadlineRules, *, by: str, organisation_id: str | None, now: datetime
) -> list[Effect] | None:
    """The receiving body accepts: intake opens (or links) the case; the handling clock runs."""
    if doc.status in (ACCEPTED, IN_MEDIATION) and (organisation_id in (None, doc.organisation_id)):
        return None
    if doc.status != REQUESTED:
        raise _illegal(doc, "接收")
    doc.organisation_id = organisation_id or doc.organisation_id
    assert doc.organisation_id is not None
    effects = _stop_stage(doc, RESPONSE, now)
    doc.status = ACCEPTED
    doc.accepted_at = doc.answered_at = now
    doc.due = rules.handling_due(doc.clock_kind, now)
    _start_stage(doc, rules, HANDLING, start=now, due=doc.due)
    doc.history.append(
        Hop(at=now, action="accept", by=by, status=ACCEPTED, organisation_id=doc.organisation_id)
    )
    accepted = ReferralAccepted(
        referral_id=doc.id,
        agency_id=doc.agency_id,
        agency_kind=doc.agency_kind,
        agency_ref=doc.agency_ref,
        referral_kind=doc.referral_kind,
        county=doc.county,
        township=doc.township,
        category=doc.category,
        organisation_id=doc.organisation_id,
        case_id=doc.linked_case_id,
        submission_enc=doc.submission_enc,
        due=doc.due,
        accepted_at=now,
    )
    effects.append(Effect(topics.REFERRALS, accepted, doc.id))
    effects += _notice(
        doc, AgencyReferralAccepted, status=ACCEPTED, at=now, organisation_id=doc.organisation_id, due=doc.due
    )
    return effects


def decline(doc: ReferralDoc, *, by: str, reason: str, now: datetime) -> list[Effect] | None:
    """The receiving body declines with a reason: the referral returns to its sender."""
    if doc.status == DECLINED:
        return None
    if doc.status != REQUESTED:
        raise _illegal(doc, "退回")
    assert doc.organisation_id is not None
    effects = _stop_stage(doc, RESPONSE, now)
    doc.status = DECLINED
    doc.answered_at = now
    doc.decline_reason = reason
    doc.history.append(
        Hop(
            at=now, action="decline", by=by, status=DECLINED, organisation_id=doc.organisation_id, note=reason
        )
    )
    declined = ReferralDeclined(
        referral_id=doc.id,
        agency_id=doc.agency_id,
        agency_kind=doc.agency_kind,
        agency_ref=doc.agency_ref,
        county=doc.county,
        organisation_id=doc.organisation_id,
        reason=reason,
        declined_at=now,
    )
    effects.append(Effect(topics.REFERRALS, declined, doc.id))
    effects += _notice(
        doc,
        AgencyReferralDeclined,
        status=DECLINED,
        at=now,
        organisation_id=doc.organisation_id,
        reason=reason,
    )
    return effects


def case_opened(
    doc: ReferralDoc, *, case_id: str, organisation_id: str | None, now: datetime
) -> list[Effect] | None:
    """Intake registered the referral's case: remember which case closes the loop."""
    if doc.case_id == case_id or doc.status not in (ACCEPTED, IN_MEDIATION):
        return None
    doc.case_id = case_id
    doc.history.append(
        Hop(
            at=now,
            action="case_opened",
            by="system:intake",
            status=doc.status,
            organisation_id=organisation_id or doc.organisation_id,
        )
    )
    return []


def mediation_started(
    doc: ReferralDoc, *, case_id: str, organisation_id: str | None, now: datetime
) -> list[Effect] | None:
    """A mediator was assigned to the referral's case."""
    if doc.status != ACCEPTED:
        return None
    doc.status = IN_MEDIATION
    doc.case_id = doc.case_id or case_id
    doc.mediator_assigned = True
    if organisation_id:
        doc.organisation_id = organisation_id
    doc.history.append(
        Hop(
            at=now,
            action="mediate",
            by="system:registry",
            status=IN_MEDIATION,
            organisation_id=doc.organisation_id,
        )
    )
    event = ReferralInMediation(
        referral_id=doc.id,
        agency_id=doc.agency_id,
        agency_kind=doc.agency_kind,
        agency_ref=doc.agency_ref,
        county=doc.county,
        case_id=case_id,
        organisation_id=doc.organisation_id,
        at=now,
    )
    return [
        Effect(topics.REFERRALS, event, doc.id),
        *_notice(
            doc,
            AgencyReferralInMediation,
            status=IN_MEDIATION,
            at=now,
            case_id=case_id,
            organisation_id=doc.organisation_id,
        ),
    ]


def moved(
    doc: Subject, *, organisation_id: str | None, transfer_id: str, kind: str, now: datetime
) -> list[Effect] | None:
    """The case moved to another body after an accepted transfer: one more hop."""
    if organisation_id is None or doc.organisation_id == organisation_id or doc.status in CLOSED:
        return None
    previous = doc.organisation_id
    doc.organisation_id = organisation_id
    doc.history.append(
        Hop(
            at=now,
            action=f"transfer:{kind}",
            by="system:intake",
            status=doc.status,
            organisation_id=organisation_id,
            note=f"{TRANSFER_KINDS.get(kind, kind)} {transfer_id} from {previous}",
        )
    )
    return []


def closed(
    doc: ReferralDoc,
    *,
    outcome: str,
    case_id: str,
    now: datetime,
    agreement_summary: str = "",
    route: str = "",
    reason: str = "",
) -> list[Effect] | None:
    """The case ended: the sender gets the outcome under its own reference (closed loop)."""
    if doc.status in CLOSED:
        return None
    if doc.status not in (ACCEPTED, IN_MEDIATION):
        raise _illegal(doc, "办结")
    effects = _stop_stage(doc, HANDLING, now)
    doc.status = outcome
    doc.outcome = outcome
    doc.closed_at = now
    doc.case_id = doc.case_id or case_id
    doc.agreement_summary = agreement_summary
    doc.judicial_confirmation_ready = outcome == RESOLVED and doc.agency_kind == AgencyKind.COURT
    doc.history.append(
        Hop(
            at=now,
            action="close",
            by="system:intake",
            status=outcome,
            organisation_id=doc.organisation_id,
            note=route or reason,
        )
    )
    closed_event = ReferralClosed(
        referral_id=doc.id,
        agency_id=doc.agency_id,
        agency_kind=doc.agency_kind,
        agency_ref=doc.agency_ref,
        county=doc.county,
        case_id=doc.case_id,
        outcome=outcome,
        closed_at=now,
        agreement_summary=agreement_summary,
        judicial_confirmation_ready=doc.judicial_confirmation_ready,
    )
    effects.append(Effect(topics.REFERRALS, closed_event, doc.id))
    effects += _notice(
        doc,
        AgencyReferralClosed,
        status=outcome,
        at=now,
        outcome=outcome,
        case_id=doc.case_id,
        agreement_summary=agreement_summary,
        judicial_confirmation_ready=doc.judicial_confirmation_ready,
        route=route,
        reason=reason,
    )
    return effects


# -- transfers ------------------------------------------------------------------------------


def transfer_requested(doc: TransferDoc, rules: DeadlineRules, *, now: datetime) -> list[Effect]:
    doc.status = REQUESTED
    doc.response_due = rules.response_due(now)
    _start_stage(doc, rules, RESPONSE, start=now, due=doc.response_due)
    planned = rules.handling_due("mediation", now, doc.due_days) if doc.kind == "assign_down" else None
    doc.history.append(
        Hop(
            at=now,
            action=f"request:{doc.kind}",
            by=doc.requested_by,
            status=REQUESTED,
            organisation_id=doc.from_organisation_id,
            note=f"{TRANSFER_KINDS[doc.kind]} → {doc.to_organisation_id}",
        )
    )
    event = TransferRequested(
        transfer_id=doc.id,
        case_id=doc.case_id,
        county=doc.county,
        kind=doc.kind,
        from_organisation_id=doc.from_organisation_id,
        to_organisation_id=doc.to_organisation_id,
        reason=doc.reason,
        due=planned,
        requested_at=now,
    )
    return [Effect(topics.REFERRALS, event, doc.id)]


def transfer_accepted(
    doc: TransferDoc, rules: DeadlineRules, *, by: str, case: CaseView | None, now: datetime
) -> list[Effect] | None:
    """The receiving body takes the case over: intake moves it, the registry reassigns.
    A 交办 stays supervised (督办) by the assigning body until the case closes."""
    if doc.status in (ACCEPTED, COMPLETED):
        return None
    if doc.status != REQUESTED:
        raise _illegal(doc, "接收")
    effects = _stop_stage(doc, RESPONSE, now)
    doc.status = ACCEPTED
    doc.accepted_at = now
    doc.organisation_id = doc.to_organisation_id
    if doc.kind == "assign_down":
        doc.due = rules.handling_due("mediation", now, doc.due_days)
        _start_stage(doc, rules, HANDLING, start=now, due=doc.due)
    doc.history.append(
        Hop(at=now, action="accept", by=by, status=ACCEPTED, organisation_id=doc.to_organisation_id)
    )
    event = TransferAccepted(
        transfer_id=doc.id,
        case_id=doc.case_id,
        county=doc.county,
        kind=doc.kind,
        from_organisation_id=doc.from_organisation_id,
        to_organisation_id=doc.to_organisation_id,
        due=doc.due,
        accepted_at=now,
        risk_level=case.risk_level if case else None,
        category=case.category if case else None,
        party_keys=case.party_keys if case else [],
    )
    effects.append(Effect(topics.REFERRALS, event, doc.id))
    return effects


def transfer_declined(doc: TransferDoc, *, by: str, reason: str, now: datetime) -> list[Effect] | None:
    """The receiving body declines: the case stays with the sender, who sees the reason."""
    if doc.status == DECLINED:
        return None
    if doc.status != REQUESTED:
        raise _illegal(doc, "退回")
    effects = _stop_stage(doc, RESPONSE, now)
    doc.status = DECLINED
    doc.decline_reason = reason
    doc.history.append(
        Hop(
            at=now,
            action="decline",
            by=by,
            status=DECLINED,
            organisation_id=doc.to_organisation_id,
            note=reason,
        )
    )
    event = TransferDeclined(
        transfer_id=doc.id,
        case_id=doc.case_id,
        county=doc.county,
        to_organisation_id=doc.to_organisation_id,
        reason=reason,
        declined_at=now,
    )
    effects.append(Effect(topics.REFERRALS, event, doc.id))
    return effects


def transfer_case_closed(doc: TransferDoc, *, outcome: str, now: datetime) -> list[Effect] | None:
    """The case of a supervised 交办 ended: supervision ends with it."""
    if doc.status != ACCEPTED or doc.kind != "assign_down":
        return None
    effects = _stop_stage(doc, HANDLING, now)
    doc.status = COMPLETED
    doc.outcome = outcome
    doc.closed_at = now
    doc.history.append(Hop(at=now, action="complete", by="system:intake", status=COMPLETED, note=outcome))
    event = TransferCompleted(
        transfer_id=doc.id,
        case_id=doc.case_id,
        county=doc.county,
        kind=doc.kind,
        outcome=outcome,
        completed_at=now,
    )
    effects.append(Effect(topics.REFERRALS, event, doc.id))
    return effects
