"""What the other services tell us, and the loop it closes: the registry's organisations,
intake's cases and the registry's assignments are projected here; a referred case's
registration, mediator and end are each told to the sender (through its referral), and
the end of a case ends the supervision of its 交办.

Both projections are aggregates of the storage engine, their changes pure decisions on
the projected state. A registration and an assignment of one case arrive on different
topics, in either order and possibly on two replicas at once; both are facts of the same
case projection, whose changes are claimed one at a time, so whichever is applied second
sees the other and starts the mediation of the referral.
"""

from __future__ import annotations

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
from tiaojie.contracts.registry import MediatorAssigned, OrganisationUpdated
from tiaojie.referral import lifecycle
from tiaojie.referral.core import ReferralCore, kind_label
from tiaojie.referral.lifecycle import Effect
from tiaojie.referral.models import ReferralDoc, Subject, TransferDoc
from tiaojie.runtime.mongo import Document
from tiaojie.runtime.revisions import Change

# The registry's version of an organisation (the engine's own `version` counts our revisions).
SOURCE_VERSION = "source_version"


def organisation_projected(state: Document | None, event: OrganisationUpdated) -> Change | None:
    """The registry's newer version of an organisation; an older or repeated one changes nothing."""
    # Snapshots written before the engine kept the registry's version as `version`.
    current = state or {}
    if event.version <= int(current.get(SOURCE_VERSION) or current.get("version") or 0):
        return None
    fields = event.model_dump(mode="json", exclude={"organisation_id", "version"})
    return Change({**current, **fields, SOURCE_VERSION: event.version})


def _merged(state: Document | None, fields: Document) -> Change | None:
    """The projection with these fields, or None if it has them already. `at` alone is no
    change: a redelivered event's time comes back from the database rounded to milliseconds."""
    current = state or {}
    if all(current.get(k) == v for k, v in fields.items() if k != "at"):
        return None
    return Change({**current, **fields})


def case_registered(state: Document | None, data: CaseRegistered) -> Change | None:
    """A case as intake registered it (a status a later event set stays)."""
    return _merged(
        state,
        {
            "county": data.county,
            "township": data.township,
            "category": str(data.category),
            "organisation_id": data.organisation_id,
            "risk_level": str(data.risk_level),
            "party_keys": data.party_keys,
            "referral_id": data.referral_id,
            "status": (state or {}).get("status") or "received",
            "at": data.received_at,
        },
    )


def case_changed(state: Document | None, data: CaseEvent) -> Change | None:
    """Where a case is, who holds it and its status, from any of its lifecycle events."""
    fields: Document = {
        "county": data.county,
        "status": str(data.status),
        "organisation_id": data.organisation_id,
        "at": data.at,
    }
    if data.category:
        fields["category"] = str(data.category)
    if data.referral_id:
        fields["referral_id"] = data.referral_id
    if isinstance(data, RiskRaised):
        fields["risk_level"] = str(data.risk_level)
    return _merged(state, fields)


def assignment_recorded(state: Document | None, *, organisation_id: str) -> Change | None:
    """The body of the mediator the registry assigned (intake's registration may follow)."""
    return _merged(state, {"assigned_organisation_id": organisation_id})


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


class Projections(ReferralCore):
    """The projections of organisations and cases, and the closed loop they drive."""

    async def project_organisation(self, *, event: OrganisationUpdated) -> None:
        """Keep the registry's latest version of an organisation."""
        await self.repo.organisations.apply(event.organisation_id, lambda s: organisation_projected(s, event))

    async def on_case_registered(self, *, data: CaseRegistered) -> None:
        """Project the case; a case opened for a referral closes the first half of the loop."""
        outcome = await self.repo.cases.apply(data.case_id, lambda s: case_registered(s, data))
        if not data.referral_id:
            return
        now = self.clock.now()

        def opened(doc: ReferralDoc) -> list[Effect] | None:
            return lifecycle.case_opened(
                doc, case_id=data.case_id, organisation_id=data.organisation_id, now=now
            )

        await self.referrals.apply_existing(data.referral_id, opened, now=now, verify_noop=True)
        assigned = (outcome.after or {}).get("assigned_organisation_id")
        if assigned:  # the registry's assignment came first
            await self._mediation_started(data.case_id, assigned, [data.referral_id])

    async def on_mediator_assigned(self, *, data: MediatorAssigned) -> None:
        """A mediator for a referred case: mediation is under way (told to the sender)."""
        outcome = await self.repo.cases.apply(
            data.case_id, lambda s: assignment_recorded(s, organisation_id=data.organisation_id)
        )
        referral_ids = await self.repo.referral_ids_for_case(data.case_id)
        registered_for = (outcome.after or {}).get("referral_id")
        if registered_for:  # intake's registration came first
            referral_ids = list(dict.fromkeys([registered_for, *referral_ids]))
        await self._mediation_started(data.case_id, data.organisation_id, referral_ids)

    async def on_case_event(self, *, data: CaseEvent) -> None:
        """Keep the case projection; close the loop when a referred case ends."""
        await self.repo.cases.apply(data.case_id, lambda s: case_changed(s, data))
        referral_ids = (
            [data.referral_id] if data.referral_id else await self.repo.referral_ids_for_case(data.case_id)
        )
        now = self.clock.now()
        if isinstance(data, CaseAssignmentRecorded | SessionRecorded):
            await self._mediation_started(data.case_id, data.organisation_id, referral_ids)
        elif isinstance(data, CaseTransferred):
            moved_by = data

            def moved(doc: Subject) -> list[Effect] | None:
                return lifecycle.moved(
                    doc,
                    organisation_id=moved_by.organisation_id,
                    transfer_id=moved_by.transfer_id,
                    kind=moved_by.kind,
                    now=now,
                )

            await self.referrals.apply_many(dict.fromkeys(referral_ids, moved), now=now, verify_noop=True)
        elif isinstance(data, CaseResolved | CaseFailed | CaseWithdrawn | CaseRejected):
            await self._case_ended(data, referral_ids)

    async def _case_ended(self, data: CaseEvent, referral_ids: list[str]) -> None:
        outcome, extra = outcome_of(data)
        now = self.clock.now()

        def closed(doc: ReferralDoc) -> list[Effect] | None:
            return lifecycle.closed(doc, outcome=outcome, case_id=data.case_id, now=now, **extra)

        def completed(doc: TransferDoc) -> list[Effect] | None:
            return lifecycle.transfer_case_closed(doc, outcome=outcome, now=now)

        referrals = dict.fromkeys(referral_ids, closed)
        for one in await self.referrals.apply_many(referrals, now=now, verify_noop=True):
            if one.fresh:
                self.metrics.referrals.labels(kind_label(one.doc.agency_kind), one.doc.county, outcome).inc()
        transfers = dict.fromkeys(await self.repo.transfer_ids_for_case(data.case_id), completed)
        for done in await self.transfers.apply_many(transfers, now=now, verify_noop=True):
            if done.fresh:
                self.metrics.transfers.labels(done.doc.county, done.doc.kind, "completed").inc()

    async def _mediation_started(
        self, case_id: str, organisation_id: str | None, referral_ids: list[str]
    ) -> None:
        now = self.clock.now()

        def started(doc: ReferralDoc) -> list[Effect] | None:
            return lifecycle.mediation_started(doc, case_id=case_id, organisation_id=organisation_id, now=now)

        await self.referrals.apply_many(dict.fromkeys(referral_ids, started), now=now, verify_noop=True)
