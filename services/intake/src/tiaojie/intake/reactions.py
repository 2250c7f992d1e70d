"""Reactions to the other services: the registry's organisations and assignment
decisions, referral's accepted referrals and transfers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tiaojie.contracts.common import CaseStatus, Channel
from tiaojie.contracts.intake import CaseAssignmentRecorded, CaseTransferred, DisputeSubmission
from tiaojie.contracts.referral import ReferralAccepted, TransferAccepted
from tiaojie.contracts.registry import AssignmentFailed, MediatorAssigned, OrganisationUpdated
from tiaojie.intake.acceptance import Accepting
from tiaojie.intake.actions import not_accepting
from tiaojie.intake.lifecycle import OPEN
from tiaojie.intake.models import Assignment, AssignmentFailure, CaseDoc, Transfer
from tiaojie.intake.registration import Registering, case_id_for
from tiaojie.intake.transitions import Action, Change
from tiaojie.runtime.consumer import DeadLetter
from tiaojie.runtime.errors import NotFound
from tiaojie.runtime.logging import get_logger

log = get_logger(__name__)

REGISTRY = "system:registry"


class Reacting(Registering, Accepting):
    # -- projections and assignments ------------------------------------------------------------
    async def project_organisation(self, *, event: OrganisationUpdated) -> None:
        """Keep intake's routing table in step with the registry."""
        await self.repo.project_organisation(event)

    async def record_assignment(self, *, event: MediatorAssigned, event_id: str) -> None:
        """Record the mediator the registry chose (see `_assignment`)."""
        await self._apply_from_registry(event.case_id, self._assignment(event, event_id))

    async def record_assignment_failure(self, *, event: AssignmentFailed, event_id: str) -> None:
        """Nobody eligible: the case shows why, so a centre user can step in."""
        await self._apply_from_registry(event.case_id, self._assignment_failure(event, event_id))

    async def record_registry_decisions(
        self, *, decisions: Sequence[tuple[MediatorAssigned | AssignmentFailed, str]]
    ) -> None:
        """A batch of the registry's decisions (with their event ids), in order: the first
        decision about each case is applied together with the others', claimed at once;
        further decisions about the same case follow one at a time, in order."""
        first: dict[str, Action] = {}
        rest: list[tuple[str, Action]] = []
        for event, event_id in decisions:
            action = (
                self._assignment(event, event_id)
                if isinstance(event, MediatorAssigned)
                else self._assignment_failure(event, event_id)
            )
            if event.case_id in first:
                rest.append((event.case_id, action))
            else:
                first[event.case_id] = action
        applied = await self.writer.apply_many(first)
        for case_id in first.keys() - applied.keys():
            log.info("registry decision for an unknown case ignored", case_id=case_id)
        for case_id, action in rest:
            await self._apply_from_registry(case_id, action)

    def _assignment(self, event: MediatorAssigned, event_id: str) -> Action:
        """Record the mediator the registry chose. Before acceptance it is kept as a
        pre-assignment; an accepted or transferred case becomes `assigned`; a case in
        hand gets the new mediator (reassignment). Stale and repeated decisions are ignored."""

        def build(current: CaseDoc, now: datetime) -> Change | None:
            if current.status not in OPEN:
                return None
            held = current.assignment
            if held is not None and held.assigned_at >= event.assigned_at:
                return None  # the same decision again, or an older one arriving late
            if (
                current.transfers
                and event.assigned_at < current.transfers[-1].at
                and event.organisation_id != current.organisation_id
            ):
                return None  # decided for the organisation the case has left
            assignment = Assignment(
                mediator_id=event.mediator_id,
                mediator_name=event.mediator_name,
                organisation_id=event.organisation_id,
                assigned_at=event.assigned_at,
                reason=event.reason,
                escalated_from=event.escalated_from,
                manual=event.manual,
            )
            sets = {
                "assignment": assignment.model_dump(mode="python"),
                "mediator_id": event.mediator_id,
                "organisation_id": event.organisation_id,
                "assignment_failure": None,
            }
            if current.status in (CaseStatus.RECEIVED,):
                return Change(
                    status=current.status, note=f"受理前预指派调解员 {event.mediator_id}", sets=sets
                )
            status = (
                CaseStatus.ASSIGNED
                if current.status in (CaseStatus.ACCEPTED, CaseStatus.TRANSFERRED)
                else current.status
            )
            return Change(
                status=status,
                note=f"指派调解员 {event.mediator_id}",
                sets=sets,
                events=[(CaseAssignmentRecorded, {"mediator_id": event.mediator_id})],
            )

        return Action(action="assign", action_id=f"assign:{event_id}", by=REGISTRY, build=build)

    async def _apply_from_registry(self, case_id: str, action: Action) -> None:
        """Apply a registry decision to a case; a case intake does not know is skipped
        (found missing by the read the write makes anyway, not by a read of its own)."""
        try:
            await self._apply(
                case_id, action=action.action, action_id=action.action_id, by=action.by, build=action.build
            )
        except NotFound:
            log.info("registry decision for an unknown case ignored", case_id=case_id, action=action.action)

    def _assignment_failure(self, event: AssignmentFailed, event_id: str) -> Action:
        """Nobody eligible: the case shows why, so a centre user can step in."""

        def build(current: CaseDoc, now: datetime) -> Change | None:
            if current.status not in OPEN or current.assignment is not None:
                return None
            failure = AssignmentFailure(reason=event.reason, tried=event.tried, at=event.failed_at)
            return Change(
                status=current.status,
                note=f"未能指派调解员：{event.reason}",
                sets={"assignment_failure": failure.model_dump(mode="python")},
            )

        return Action(
            action="assignment_failed", action_id=f"assign-failed:{event_id}", by=REGISTRY, build=build
        )

    # -- referrals and transfers ----------------------------------------------------------------
    async def accept_referral(self, *, event: ReferralAccepted, event_id: str) -> None:
        """A body accepted a referral: link the named case, or register the dispute (channel
        referral) and accept it for the receiving organisation, idempotently."""
        if event.case_id:
            existing = await self.repo.get_case(event.case_id)
            if existing is not None:
                await self._link_referral(existing, event)
                return
        try:
            plain = self.protector.decrypt(event.submission_enc)
            submission = DisputeSubmission.model_validate_json(plain)
        except Exception as exc:
            raise DeadLetter("undecryptable_submission", detail=type(exc).__name__) from None
        if event.category and submission.category is None:
            submission = submission.model_copy(update={"category": event.category})
        case_id = case_id_for(scope="referral", key=event.referral_id)
        result = await self.register(
            submission=submission,
            registered_by="system:referral",
            case_id=case_id,
            category_authority="referral",
            channel=Channel.REFERRAL,
            organisation_id=event.organisation_id,
            referral_id=event.referral_id,
            referral_due=event.due,
            referral_kind=event.referral_kind,
        )
        if result.linked:
            return
        if await self.repo.get_organisation(event.organisation_id) is None:
            log.warning(
                "referred case left for the desk: organisation not yet known",
                organisation_id=event.organisation_id,
            )
            return
        if result.case.status == CaseStatus.RECEIVED or result.case.accept_pending:
            # The receiving organisation accepted the referral: that is its acceptance (受理).
            await self.accept(
                case_id=case_id, by="system:referral", action_id=f"referral-accept:{event.referral_id}"
            )

    async def _link_referral(self, case: CaseDoc, event: ReferralAccepted) -> None:
        def build(current: CaseDoc, now: datetime) -> Change | None:
            if current.referral_id == event.referral_id:
                return None
            return Change(
                status=current.status,
                note=f"关联移交 {event.referral_id}",
                sets={"referral_id": event.referral_id},
            )

        await self._apply(
            case.id,
            action="link_referral",
            action_id=f"referral:{event.referral_id}",
            by="system:referral",
            build=build,
        )

    async def transfer(self, *, event: TransferAccepted, event_id: str) -> None:
        """An accepted transfer (转办/交办/上报) moves the case to another organisation.

        Status rule: a `received` case stays `received` (the new organisation decides on
        acceptance); a case already accepted becomes `transferred` until the new
        organisation's mediator is recorded (→ `assigned`), or `assigned` at once when that
        mediator was recorded before the transfer arrived. Case number and clocks stay.
        """
        held = await self.repo.get_case(event.case_id)
        if held is None:
            raise DeadLetter("unknown_case", detail="transfer for a case intake does not hold")
        if held.accept_pending:
            await self.complete_acceptance(event.case_id)

        def build(current: CaseDoc, now: datetime) -> Change | None:
            if current.status not in OPEN:
                return None
            not_accepting(current)
            held = current.assignment
            keep = (
                held is not None
                and held.organisation_id == event.to_organisation_id
                and held.assigned_at >= event.accepted_at
            )
            if current.status == CaseStatus.RECEIVED:
                status = CaseStatus.RECEIVED
            else:
                status = CaseStatus.ASSIGNED if keep else CaseStatus.TRANSFERRED
            transfer = Transfer(
                transfer_id=event.transfer_id,
                kind=event.kind,
                from_organisation_id=event.from_organisation_id or current.organisation_id,
                to_organisation_id=event.to_organisation_id,
                at=event.accepted_at,
                previous_status=current.status,
            )
            sets: dict[str, Any] = {"organisation_id": event.to_organisation_id}
            if not keep:
                sets |= {"assignment": None, "mediator_id": None}
            return Change(
                status=status,
                note=f"转至 {event.to_organisation_id}",
                sets=sets,
                push={"transfers": transfer.model_dump(mode="python")},
                events=[
                    (
                        CaseTransferred,
                        {
                            "from_organisation_id": transfer.from_organisation_id,
                            "transfer_id": event.transfer_id,
                            "kind": event.kind,
                        },
                    )
                ],
            )

        await self._apply(
            event.case_id,
            action="transfer",
            action_id=f"transfer:{event.transfer_id}",
            by="system:referral",
            build=build,
        )
