"""受理: acceptance in two steps (the intent, then the case number and the accepted
state), so that a crash between them never loses or doubles a number; and the
reconciler that finishes what a crash left half done."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tiaojie.contracts import topics
from tiaojie.contracts.common import CaseStatus
from tiaojie.contracts.intake import CaseAccepted, CaseAssignmentRecorded
from tiaojie.intake import lifecycle
from tiaojie.intake.access import forbidden_outside
from tiaojie.intake.models import CaseDoc, HistoryEntry, MediationClock
from tiaojie.intake.repository import Scope
from tiaojie.intake.transitions import SYSTEM, Change, Events, IntakeCore, case_event, next_state
from tiaojie.runtime.errors import FieldError, Invalid


def format_case_number(*, year: int, short_name: str, n: int) -> str:
    """(2026)临兰人调字第123号: year, organisation short name, 人调字, sequence."""
    return f"({year}){short_name}人调字第{n}号"


def accepted(
    case: CaseDoc, intent: dict[str, Any], *, number: str, mediation_days: int
) -> tuple[CaseDoc, Events]:
    """The accepted case and its events, from its recorded intent and its claimed number
    (assigned at once when the registry's mediator was chosen before acceptance)."""
    accepted_at: datetime = intent["at"]
    if case.referral_due is not None:
        clock = MediationClock(started_at=accepted_at, due=case.referral_due, source="referral")
    else:
        clock = MediationClock(started_at=accepted_at, due=accepted_at + timedelta(days=mediation_days))
    pre = (
        case.assignment
        if case.assignment and case.assignment.organisation_id == case.organisation_id
        else None
    )
    status = CaseStatus.ASSIGNED if pre else CaseStatus.ACCEPTED
    accepted_case = case.model_copy(update={"status": CaseStatus.ACCEPTED, "case_number": number})
    action_id = intent["action_id"]
    events = [
        (
            topics.CASES,
            case_event(
                CaseAccepted,
                accepted_case,
                at=accepted_at,
                by=intent["by"],
                action_id=action_id,
                fields={"case_number": number, "mediation_due": clock.due},
            ),
        )
    ]
    history = [
        HistoryEntry(
            at=accepted_at, action="accept", by=intent["by"], status=CaseStatus.ACCEPTED, note=number
        )
    ]
    if pre is not None:
        assigned = accepted_case.model_copy(update={"status": status})
        events.append(
            (
                topics.CASES,
                case_event(
                    CaseAssignmentRecorded,
                    assigned,
                    at=accepted_at,
                    by=SYSTEM,
                    action_id=action_id,
                    fields={"mediator_id": pre.mediator_id},
                ),
            )
        )
        history.append(
            HistoryEntry(
                at=accepted_at,
                action="assign",
                by=SYSTEM,
                status=status,
                note=f"受理前已指派调解员 {pre.mediator_id}",
            )
        )
    change = Change(
        status=status,
        sets={
            "case_number": number,
            "accepted_at": accepted_at,
            "accepted_by": intent["by"],
            "clock": clock.model_dump(),
            "accept_pending": False,
            "acceptance_intent": None,
        },
    )
    after = next_state(case, change, entries=history, action_id=action_id)
    return after, events


class Accepting(IntakeCore):
    async def accept(
        self,
        *,
        case_id: str,
        by: str,
        action_id: str,
        scope: Scope | None = None,
        organisation_id: str | None = None,
    ) -> CaseDoc:
        """受理: record the intent, claim the next case number, then accept (see complete_acceptance)."""

        async def intend(case: CaseDoc) -> tuple[CaseDoc, Events] | None:
            if action_id in case.applied or case.accept_pending:
                return None
            lifecycle.check("accept", case.status)
            if organisation_id and case.organisation_id and organisation_id != case.organisation_id:
                raise Invalid(
                    [
                        FieldError(
                            "organisation_id",
                            "already_routed",
                            "案件已分流至其他调解组织",
                            "the case is routed to another organisation",
                        )
                    ]
                )
            org_id = case.organisation_id or organisation_id
            organisation = await self.repo.get_organisation(org_id) if org_id else None
            if organisation is None or organisation.county != case.county:
                raise Invalid(
                    [
                        FieldError(
                            "organisation_id",
                            "organisation_required",
                            "请指定本县区的受理调解组织",
                            "name an organisation of the case's county to accept it",
                        )
                    ]
                )
            if scope is not None and not scope.acts_for(organisation.id):
                raise forbidden_outside()  # the case as it will be: held outside the caller's organisations
            now = self.clock.now()
            year = now.astimezone(self.tz).year
            intent = {
                "at": now,
                "by": by,
                "action_id": action_id,
                "organisation_id": organisation.id,
                "short_name": organisation.short_name,
                "year": year,
                "counter": f"{organisation.id}:{year}",
            }
            change = Change(
                status=case.status,
                note="受理中",
                sets={
                    "accept_pending": True,
                    "acceptance_intent": intent,
                    "organisation_id": organisation.id,
                },
            )
            # The intent is an internal step (no history entry) with an id of its own, so
            # that the final step records the request's id.
            return next_state(case, change, entries=[], action_id=f"intent:{action_id}"), []

        intended = await self.writer.decide(case_id, intend, scope=scope)
        if action_id in intended.case.applied:
            return intended.case
        return await self.complete_acceptance(case_id)

    async def complete_acceptance(self, case_id: str) -> CaseDoc:
        """Finish an acceptance whose intent is recorded: claim the number (the same one on
        every retry) and write the accepted state with its events. Run by the request,
        and by the reconciler for intents a crash left behind: no number is ever lost."""

        async def complete(case: CaseDoc) -> tuple[CaseDoc, Events] | None:
            intent = case.acceptance_intent
            if not case.accept_pending or intent is None:
                return None
            n = await self.repo.claim_number(counter=intent["counter"], case_id=case_id, at=intent["at"])
            number = format_case_number(year=intent["year"], short_name=intent["short_name"], n=n)
            return accepted(case, intent, number=number, mediation_days=self.settings.mediation_days)

        done = await self.writer.decide(case_id, complete)
        if done.fresh:
            case = done.case
            assert case.accepted_at is not None
            self.metrics.transitions.labels("accept", case.county).inc()
            self.metrics.stage_seconds.labels("accept", case.county).observe(
                max(0.0, (case.accepted_at - case.received_at).total_seconds())
            )
        return done.case

    async def reconcile(self, *, grace: timedelta | None = None) -> int:
        """Repair what a crash left half done (runs periodically on every replica):
        revisions claimed but not settled, and acceptances between intent and result.
        Both repairs are idempotent."""
        repaired = await self.repo.store.sweep(older_than=grace)
        for case_id in await self.repo.pending_acceptances():
            await self.complete_acceptance(case_id)
            repaired += 1
        return repaired
