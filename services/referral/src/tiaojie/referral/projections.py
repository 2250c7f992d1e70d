"""What the other services tell us, and the loop it closes: the registry's organisations
(the runtime's directory) and intake's cases are projected here; a referred case's
registration, mediation and end are each told to the sender (through its referral), and
the end of a case ends the supervision of its 交办.

Intake's case topic is the one source of what happens to a case: its events arrive on
the case's own partition, in order, so "mediation is under way" is intake's
`CaseAssignmentRecorded` (or a session), never the registry's proposal of a mediator
(which intake records, after 受理, as that very event).

The case topic is read a batch at a time: the batch's events are grouped by case (each
case's in order), folded into each case's projection in memory and written with one
`apply_many`; the referrals and transfers they affect are looked up once for the batch
and changed with one `apply_many` each, every subject's steps of the batch folded into
one change. The projection keeps only what transfers read (where the case is, who holds
it, whether it ended, its risk, category and parties' keys), so most events of a case
change nothing and write nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from tiaojie.contracts.intake import (
    CaseAssignmentRecorded,
    CaseEvent,
    CaseFailed,
    CaseRegistered,
    CaseRejected,
    CaseResolved,
    CaseTransferred,
    CaseWithdrawn,
    RiskRaised,
    SessionRecorded,
)
from tiaojie.contracts.registry import OrganisationUpdated
from tiaojie.referral import lifecycle
from tiaojie.referral.core import ReferralCore, kind_label
from tiaojie.referral.lifecycle import Effect
from tiaojie.referral.models import CASE_CLOSED, ReferralDoc, Subject, TransferDoc
from tiaojie.referral.subjects import Transition
from tiaojie.runtime.mongo import Document
from tiaojie.runtime.revisions import Change

# One event of intake's case topic, as referral reads it.
CaseInput = CaseRegistered | CaseEvent
MEDIATING = (CaseAssignmentRecorded, SessionRecorded)
ENDING = (CaseResolved, CaseFailed, CaseWithdrawn, CaseRejected)
# What a case does that its referrals hear of, besides its registration.
REFERRAL_FACTS = (*MEDIATING, CaseTransferred, *ENDING)
S = TypeVar("S", bound=Subject)


# -- the case projection (pure) -------------------------------------------------------------


def case_view(state: Document | None) -> Document:
    """The fields the projection keeps, of a stored projection (older ones included: they
    kept the case's status instead of `ended`, and more fields than are read)."""
    current = state or {}
    ended = current.get("ended")
    if ended is None:
        ended = str(current.get("status")) in CASE_CLOSED
    return {
        "county": current.get("county"),
        "category": current.get("category"),
        "organisation_id": current.get("organisation_id"),
        "risk_level": current.get("risk_level") or "ordinary",
        "party_keys": list(current.get("party_keys") or []),
        "ended": bool(ended),
    }


def case_folded(view: Document, data: CaseInput) -> Document:
    """The projection's fields after one event of the case."""
    if isinstance(data, CaseRegistered):
        # A status a later event set stays (a registration can be redelivered late).
        return {
            **view,
            "county": data.county,
            "category": str(data.category),
            "organisation_id": data.organisation_id,
            "risk_level": str(data.risk_level),
            "party_keys": list(data.party_keys),
        }
    fields: Document = {
        "county": data.county,
        "organisation_id": data.organisation_id,
        "ended": str(data.status) in CASE_CLOSED,
    }
    if data.category:
        fields["category"] = str(data.category)
    if isinstance(data, RiskRaised):
        fields["risk_level"] = str(data.risk_level)
    return {**view, **fields}


def case_projected(state: Document | None, events: Sequence[CaseInput]) -> Change | None:
    """A case's projection after its events of a batch, in order; None if they change
    nothing of what it keeps (a redelivery, or an event transfers do not care about)."""
    before = case_view(state)
    after = before
    for data in events:
        after = case_folded(after, data)
    if state is not None and after == before:
        return None
    return Change(after)


# -- what a case's events do to its referrals and transfers (pure) ---------------------------


def outcome_of(data: CaseEvent) -> tuple[str, dict[str, str]]:
    """How a case's end reads for the sender of its referral."""
    if isinstance(data, CaseResolved):
        return lifecycle.RESOLVED, {"agreement_summary": data.agreement_summary}
    if isinstance(data, CaseFailed):
        return lifecycle.FAILED, {"route": data.route, "reason": data.reason}
    if isinstance(data, CaseRejected):
        # 不予受理 of a referred dispute: for the sender it did not get mediated.
        return lifecycle.FAILED, {"route": "rejected", "reason": data.reason_code}
    return lifecycle.WITHDRAWN, {}


def referral_step(data: CaseInput, *, now: datetime) -> Transition[ReferralDoc] | None:
    """What one event of a case does to a referral of that case (None: nothing)."""
    if isinstance(data, CaseRegistered):
        if not data.referral_id:
            return None
        registered = data
        return lambda doc: lifecycle.case_opened(
            doc, case_id=registered.case_id, organisation_id=registered.organisation_id, now=now
        )
    if isinstance(data, MEDIATING):
        mediating = data
        return lambda doc: lifecycle.mediation_started(
            doc, case_id=mediating.case_id, organisation_id=mediating.organisation_id, now=now
        )
    if isinstance(data, CaseTransferred):
        moved_by = data
        return lambda doc: lifecycle.moved(
            doc,
            organisation_id=moved_by.organisation_id,
            transfer_id=moved_by.transfer_id,
            kind=moved_by.kind,
            now=now,
        )
    if isinstance(data, ENDING):
        outcome, extra = outcome_of(data)
        ended = data
        return lambda doc: lifecycle.closed(doc, outcome=outcome, case_id=ended.case_id, now=now, **extra)
    return None


def transfer_step(data: CaseInput, *, now: datetime) -> Transition[TransferDoc] | None:
    """What one event of a case does to its transfers: its end ends a 交办's supervision."""
    if not isinstance(data, ENDING):
        return None
    outcome, _ = outcome_of(data)
    return lambda doc: lifecycle.transfer_case_closed(doc, outcome=outcome, now=now)


def in_order(steps: Sequence[Transition[S]]) -> Transition[S]:
    """One rule of several applied in order: their events together, None if none did anything."""

    def run(doc: S) -> list[Effect] | None:
        effects: list[Effect] = []
        changed = False
        for step in steps:
            done = step(doc)
            if done is not None:
                changed = True
                effects += done
        return effects if changed else None

    return run


def needs_lookup(data: CaseInput) -> bool:
    """An event that affects the case's referrals without naming one: they are looked up.
    (A registration affects only the referral it names.)"""
    return isinstance(data, REFERRAL_FACTS) and not data.referral_id


class Projections(ReferralCore):
    """The projections of organisations and cases, and the closed loop they drive."""

    async def project_organisation(self, *, event: OrganisationUpdated) -> None:
        """Keep the registry's latest version of an organisation."""
        await self.repo.directory.project(event)

    async def on_case_events(self, *, events: Sequence[CaseInput]) -> None:
        """Intake's case events of a batch, in offset order: the cases projected, the loop closed."""
        by_case: dict[str, list[CaseInput]] = {}
        for data in events:
            by_case.setdefault(data.case_id, []).append(data)
        await self.repo.cases.apply_many({case_id: _projection_of(evs) for case_id, evs in by_case.items()})
        now = self.clock.now()
        unnamed = [case_id for case_id, evs in by_case.items() if any(needs_lookup(e) for e in evs)]
        found = await self.repo.referral_ids_for_cases(unnamed)
        referral_steps: dict[str, list[Transition[ReferralDoc]]] = {}
        for case_id, evs in by_case.items():
            # A referral whose case an earlier event of the batch opened is the case's too
            # (the lookup read the referrals before that event was applied).
            of_case = list(found.get(case_id, []))
            for data in evs:
                step = referral_step(data, now=now)
                if step is None:
                    continue
                if data.referral_id:
                    targets = [data.referral_id]
                    if isinstance(data, CaseRegistered) and data.referral_id not in of_case:
                        of_case.append(data.referral_id)
                else:
                    targets = [] if isinstance(data, CaseRegistered) else of_case
                for referral_id in targets:
                    referral_steps.setdefault(referral_id, []).append(step)
        changed = {rid: in_order(steps) for rid, steps in referral_steps.items()}
        for one in await self.referrals.apply_many(changed, now=now, verify_noop=True):
            if one.fresh and one.doc.outcome and not (one.before and one.before.outcome):
                self.metrics.referrals.labels(
                    kind_label(one.doc.agency_kind), one.doc.county, one.doc.outcome
                ).inc()
        await self._cases_ended(by_case, now=now)

    async def _cases_ended(self, by_case: dict[str, list[CaseInput]], *, now: datetime) -> None:
        """The supervision of the ended cases' 交办 ends with them."""
        ended = {
            case_id: steps
            for case_id, evs in by_case.items()
            if (steps := [s for e in evs if (s := transfer_step(e, now=now)) is not None])
        }
        if not ended:
            return
        transfer_steps: dict[str, list[Transition[TransferDoc]]] = {}
        for case_id, transfer_ids in (await self.repo.transfer_ids_for_cases(list(ended))).items():
            for transfer_id in transfer_ids:
                transfer_steps.setdefault(transfer_id, []).extend(ended[case_id])
        changed = {tid: in_order(steps) for tid, steps in transfer_steps.items()}
        for done in await self.transfers.apply_many(changed, now=now, verify_noop=True):
            if done.fresh and done.doc.status == lifecycle.COMPLETED:
                self.metrics.transfers.labels(done.doc.county, done.doc.kind, "completed").inc()


def _projection_of(events: list[CaseInput]) -> Callable[[Document | None], Change | None]:
    return lambda state: case_projected(state, events)
