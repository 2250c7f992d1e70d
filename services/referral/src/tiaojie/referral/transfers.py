"""Transfers between mediation bodies: 转办 (lateral), 交办 (down, with a deadline and
supervised until the case ends) and 上报 (up), validated against the hierarchy; the
receiving body accepts (intake moves the case, the registry reassigns) or declines."""

from __future__ import annotations

import uuid
from datetime import datetime

from tiaojie.referral import lifecycle
from tiaojie.referral.core import ReferralCore, within
from tiaojie.referral.models import CaseView, ReferralDoc, TransferDoc
from tiaojie.referral.routing import transfer_errors
from tiaojie.runtime.directory import Organisation
from tiaojie.runtime.errors import Conflict, Invalid, NotFound

_TRANSFER_NS = uuid.UUID("8a1d4e6f-2c3b-4f7a-9e5d-1b0c6a7f3e24")


def transfer_id_for(scope: str, key: str) -> str:
    """One transfer per caller and Idempotency-Key: a retried request is the same transfer."""
    return str(uuid.uuid5(_TRANSFER_NS, f"{scope}\x00{key}"))


def new_transfer(
    *,
    transfer_id: str,
    case: CaseView,
    kind: str,
    target: Organisation,
    reason: str,
    reason_code: str,
    due_days: int | None,
    by: str,
    now: datetime,
) -> TransferDoc:
    """A transfer as it is asked for, from the body holding the case."""
    return TransferDoc(
        id=transfer_id,
        status=lifecycle.REQUESTED,
        county=case.county,
        organisation_id=case.organisation_id,
        clock_kind="mediation",
        response_due=now,
        case_id=case.id,
        kind=kind,
        reason_code=reason_code,
        reason=reason,
        from_organisation_id=case.organisation_id,
        to_organisation_id=target.id,
        to_county=target.county,
        requested_by=by,
        requested_at=now,
        due_days=due_days,
    )


class TransferRules(ReferralCore):
    """Asking for, answering and listing transfers."""

    async def request_transfer(
        self,
        *,
        case_id: str,
        kind: str,
        to_organisation_id: str,
        reason: str,
        reason_code: str,
        due_days: int | None,
        by: str,
        counties: list[str],
        key: str | None,
        acting_for: str | None = None,
    ) -> tuple[TransferDoc, bool]:
        """转办 / 交办 / 上报 a case to another body, validated against what we know of both;
        only the body holding the case (or one above it) hands it over."""
        case = await self.repo.get_case(case_id)
        if case is None or case.county not in counties:
            raise NotFound("案件", "case")
        if not within(await self.reach(acting_for), case.organisation_id):
            raise NotFound("案件", "case")
        if case.ended:
            raise Conflict("案件已结束，不能再转交", "the case has ended and cannot be handed over")
        target = await self.hierarchy.get(to_organisation_id)
        holder = case.organisation_id
        # Only the walk the kind needs: 交办 looks above the target, 上报 above the holder.
        below = await self.hierarchy.ancestors(target.id) if target and kind == "assign_down" else []
        above = await self.hierarchy.ancestors(holder) if holder and kind == "escalate_up" else []
        errors = transfer_errors(
            case,
            kind,
            target,
            reason_code=reason_code,
            due_days=due_days,
            target_ancestors=below,
            holder_ancestors=above,
        )
        if errors:
            raise Invalid(errors)
        assert target is not None
        transfer_id = transfer_id_for(by, key) if key else str(uuid.uuid4())
        existing = await self.transfers.get(transfer_id)
        if existing is not None:
            return existing, False
        held = await self.repo.transfer_ids_for_cases([case_id])
        others = await self.transfers.get_many(held.get(case_id, []))
        if any(t.status == lifecycle.REQUESTED for t in others):
            raise Conflict("该案件已有待接收的转交", "this case already has a transfer awaiting an answer")
        now = self.clock.now()
        doc = new_transfer(
            transfer_id=transfer_id,
            case=case,
            kind=kind,
            target=target,
            reason=reason,
            reason_code=reason_code,
            due_days=due_days,
            by=by,
            now=now,
        )
        effects = lifecycle.transfer_requested(doc, self.rules, now=now)
        if not await self.transfers.create(doc, effects, now=now):
            raced = await self.transfers.get(transfer_id)
            assert raced is not None  # the winner's snapshot was rolled forward by create
            return raced, False
        self.metrics.transfers.labels(doc.county, kind, "requested").inc()
        if kind == "escalate_up":
            self.metrics.escalations.labels(doc.county, reason_code).inc()
        return doc, True

    async def transfer_for(
        self, transfer_id: str, *, counties: list[str], acting_for: str | None = None
    ) -> TransferDoc:
        """A transfer from or to the caller's counties, and from or to an organisation-scoped
        caller's organisation (else 404)."""
        doc = await self.transfers.get(transfer_id)
        if doc is None or (doc.county not in counties and doc.to_county not in counties):
            raise NotFound("转交", "transfer")
        if not within(await self.reach(acting_for), doc.from_organisation_id, doc.to_organisation_id):
            raise NotFound("转交", "transfer")
        return doc

    async def accept_transfer(
        self, *, transfer_id: str, by: str, counties: list[str], acting_for: str | None = None
    ) -> TransferDoc:
        """The receiving body takes the case (intake moves it, the registry reassigns)."""
        reach = await self.reach(acting_for)
        current = await self.transfer_for(transfer_id, counties=counties, acting_for=acting_for)
        case = await self.repo.get_case(current.case_id)
        now = self.clock.now()
        applied = await self.transfers.apply(
            transfer_id,
            lambda d: lifecycle.transfer_accepted(d, self.rules, by=by, case=case, now=now),
            now=now,
            visible=lambda d: d.to_county in counties and within(reach, d.to_organisation_id),
        )
        if applied.fresh:
            self.metrics.transfers.labels(applied.doc.county, applied.doc.kind, "accepted").inc()
        return applied.doc

    async def decline_transfer(
        self,
        *,
        transfer_id: str,
        by: str,
        counties: list[str],
        reason: str,
        acting_for: str | None = None,
    ) -> TransferDoc:
        """The receiving body declines: the case stays, the sender sees why."""
        reach = await self.reach(acting_for)
        now = self.clock.now()
        applied = await self.transfers.apply(
            transfer_id,
            lambda d: lifecycle.transfer_declined(d, by=by, reason=reason, now=now),
            now=now,
            visible=lambda d: d.to_county in counties and within(reach, d.to_organisation_id),
        )
        if applied.fresh:
            self.metrics.transfers.labels(applied.doc.county, applied.doc.kind, "declined").inc()
        return applied.doc

    async def hops(
        self, *, case_id: str, counties: list[str], acting_for: str | None = None
    ) -> tuple[list[ReferralDoc], list[TransferDoc]]:
        """Every hand-over of a case of the caller's counties (and organisation, for an
        organisation-scoped caller): where it came from, and each transfer since."""
        case = await self.repo.get_case(case_id)
        if case is None or case.county not in counties:
            raise NotFound("案件", "case")
        if not within(await self.reach(acting_for), case.organisation_id):
            raise NotFound("案件", "case")
        referral_ids = await self.repo.referral_ids_for_cases([case_id])
        transfer_ids = await self.repo.transfer_ids_for_cases([case_id])
        referrals = await self.referrals.get_many(referral_ids.get(case_id, []))
        transfers = await self.transfers.get_many(transfer_ids.get(case_id, []))
        return referrals, sorted(transfers, key=lambda t: t.requested_at)
