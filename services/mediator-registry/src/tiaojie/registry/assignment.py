"""Who gets which case: automatic assignment with escalation, manual reassignment, and
the case projection that load is counted from.

Every decision is one document (its event in the outbox) with a per-case sequence
number; applying it to the case projection is guarded by that number, so redelivered or
replayed events neither double a load nor undo a later decision. A mediator's load is
the count of open cases whose `holder` they are, so it cannot drift from the events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from tiaojie.contracts import topics
from tiaojie.contracts.common import CaseStatus, Category, OrganisationKind, RiskLevel
from tiaojie.contracts.envelope import CloudEvent, EventData, derived_id, new_event
from tiaojie.contracts.intake import CaseEvent, CaseRegistered, CaseTransferred, RiskRaised
from tiaojie.contracts.referral import TransferAccepted
from tiaojie.contracts.registry import AssignmentFailed, Candidate, Exclusion, MediatorAssigned
from tiaojie.registry.eligibility import REASONS
from tiaojie.registry.locks import KeyedLocks
from tiaojie.registry.matching import (
    CaseNeeds,
    Counts,
    Policy,
    explain,
    grade_number,
    prefilter,
    rank,
    summarise_exclusions,
)
from tiaojie.registry.metrics import RegistryMetrics
from tiaojie.registry.models import CaseView, DecisionDoc, MediatorDoc, OrganisationDoc
from tiaojie.registry.repository import RegistryRepository
from tiaojie.registry.settings import RegistrySettings
from tiaojie.runtime.clock import Clock
from tiaojie.runtime.errors import Conflict, FieldError, IllegalTransition, Invalid, NotFound
from tiaojie.runtime.logging import get_logger
from tiaojie.runtime.mongo import OUTBOX, OUTBOX_REV, Document, OutboxRelay, outbox_fields

log = get_logger(__name__)

SOURCE = topics.service_source("registry")
# Case events after which nobody works on the case any more.
CLOSING = frozenset(
    {CaseStatus.RESOLVED, CaseStatus.FAILED, CaseStatus.WITHDRAWN, CaseStatus.ARCHIVED, CaseStatus.REJECTED}
)


@dataclass
class Search:
    """The outcome of searching up the hierarchy for a mediator."""

    tried: list[str] = field(default_factory=list)
    excluded: list[Exclusion] = field(default_factory=list)
    organisation: OrganisationDoc | None = None
    mediator: MediatorDoc | None = None
    ranked: list[Candidate] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # organisation id -> why not searched


def policy_of(settings: RegistrySettings) -> Policy:
    return Policy(
        required_grade=settings.required_grade,
        weights=settings.weights,
        default_capacity=settings.default_capacity,
        part_time_capacity=settings.part_time_capacity,
    )


class AssignmentService:
    """Assignment rules; no Kafka or HTTP in here (events leave through the outbox)."""

    def __init__(
        self,
        *,
        repository: RegistryRepository,
        relay: OutboxRelay,
        settings: RegistrySettings,
        clock: Clock,
        metrics: RegistryMetrics,
    ) -> None:
        self.repo = repository
        self.relay = relay
        self.settings = settings
        self.policy = policy_of(settings)
        self.clock = clock
        self.metrics = metrics
        self.locks = KeyedLocks()

    # -- triggers ----------------------------------------------------------------------
    async def case_registered(self, *, event: CloudEvent, case: CaseRegistered) -> None:
        """A new case gets a mediator in its routed organisation, or up the hierarchy."""
        known = await self.repo.remember_case(
            case.case_id,
            {
                "county": case.county,
                "category": str(case.category),
                "risk_level": str(case.risk_level),
                "party_keys": case.party_keys,
            },
        )
        needs = CaseNeeds(
            case_id=case.case_id,
            category=case.category,
            risk_level=str(case.risk_level),
            party_keys=frozenset(case.party_keys),
        )
        await self._decide(
            decision_id=derived_id(event.id, "assign"),
            needs=needs,
            county=case.county,
            organisation_id=case.organisation_id,
            trigger="registered",
            known=known,
        )

    async def transfer_accepted(self, *, event: CloudEvent, transfer: TransferAccepted) -> None:
        """A case transferred to another organisation gets a mediator there."""
        known = await self.repo.get_case(transfer.case_id)
        if known is not None and known.closed:
            log.info("transfer of a closed case ignored", case_id=transfer.case_id)
            return
        category = transfer.category or (known.category if known else None) or Category.OTHER
        risk = transfer.risk_level or (known.risk_level if known else None) or RiskLevel.ORDINARY
        party_keys = transfer.party_keys or (known.party_keys if known else [])
        await self.repo.remember_case(
            transfer.case_id,
            {
                "county": transfer.county,
                "category": str(category),
                "risk_level": str(risk),
                "party_keys": party_keys,
            },
        )
        needs = CaseNeeds(
            case_id=transfer.case_id,
            category=Category(category),
            risk_level=str(risk),
            party_keys=frozenset(party_keys),
        )
        await self._decide(
            decision_id=derived_id(event.id, "transfer"),
            needs=needs,
            county=transfer.county,
            organisation_id=transfer.to_organisation_id,
            trigger="transfer",
            transfer_id=transfer.transfer_id,
        )

    async def risk_raised(self, *, event: CloudEvent, risk: RiskRaised) -> None:
        """A case rated graver after assignment: if its mediator's grade no longer suits
        the risk, it is decided again (escalating as usual) and the event says why."""
        case = await self.repo.get_case(risk.case_id)
        await self.repo.remember_case(risk.case_id, {"risk_level": str(risk.risk_level)})
        if case is None or case.closed or case.mediator_id is None:
            return
        needed = self.policy.grade_needed(str(risk.risk_level))
        holder = await self.repo.get_mediator(case.mediator_id)
        if needed is None or holder is None or grade_number(holder) <= needed:
            return
        await self._decide(
            decision_id=derived_id(event.id, "risk_raised"),
            needs=CaseNeeds(
                case_id=risk.case_id,
                category=case.category or risk.category or Category.OTHER,
                risk_level=str(risk.risk_level),
                party_keys=frozenset(case.party_keys or risk.party_keys),
            ),
            county=risk.county,
            organisation_id=case.organisation_id or risk.organisation_id,
            trigger="risk_raised",
        )

    async def case_event(self, *, case: CaseEvent) -> None:
        """Closing events end the holder's load; a transfer releases it (idempotent)."""
        async with self.locks.hold(case.case_id):
            await self._case_event_locked(case)

    async def _case_event_locked(self, case: CaseEvent) -> None:
        if case.status in CLOSING:
            fields = {"closed_status": str(case.status), "closed_at": case.at}
            for _ in range(3):  # read back: a concurrent decision may have set a holder again
                await self.repo.close_case(case.case_id, fields)
                after = await self.repo.get_case(case.case_id)
                if after is None or after.holder is None:
                    break
        elif isinstance(case, CaseTransferred) and case.organisation_id:
            await self.repo.release_case(
                case.case_id, new_organisation_id=case.organisation_id, fields={"transferred_at": case.at}
            )

    # -- decisions ----------------------------------------------------------------------
    async def _decide(
        self,
        *,
        decision_id: str,
        needs: CaseNeeds,
        county: str,
        organisation_id: str | None,
        trigger: str,
        transfer_id: str | None = None,
        known: Document | None = None,
    ) -> None:
        async with self.locks.hold(needs.case_id):
            await self._decide_locked(
                decision_id=decision_id,
                needs=needs,
                county=county,
                organisation_id=organisation_id,
                trigger=trigger,
                transfer_id=transfer_id,
                known=known,
            )

    async def _decide_locked(
        self,
        *,
        decision_id: str,
        needs: CaseNeeds,
        county: str,
        organisation_id: str | None,
        trigger: str,
        transfer_id: str | None,
        known: Document | None,
    ) -> None:
        # No read of the decision first: a redelivery finds its id taken at the insert
        # below and finishes what a crash may have left (the search is then wasted, but
        # a first delivery, the usual case, saves a round trip).
        case = await self.repo.next_decision(needs.case_id, known=known)
        now = self.clock.now()
        search = await self.search(needs, county=county, start=organisation_id, today=now.date())
        payload: EventData
        if search.mediator is not None and search.organisation is not None:
            chosen = search.ranked[0]
            escalated_from = organisation_id if search.organisation.id != organisation_id else None
            outcome = "escalated" if escalated_from else "assigned"
            payload = MediatorAssigned(
                case_id=needs.case_id,
                county=county,
                organisation_id=search.organisation.id,
                mediator_id=search.mediator.id,
                mediator_name=search.mediator.name,
                score=chosen.score,
                breakdown=chosen.breakdown,
                runners_up=search.ranked[1 : 1 + self.settings.runners_up],
                escalated_from=escalated_from,
                reason=await self._reason(search, needs, escalated_from),
                assigned_at=now,
                trigger=trigger,
                previous_mediator_id=case.mediator_id,
                tried=search.tried,
                excluded=search.excluded,
                transfer_id=transfer_id,
            )
            mediator_id: str | None = search.mediator.id
            target: str | None = search.organisation.id
        else:
            outcome = "failed"
            payload = AssignmentFailed(
                case_id=needs.case_id,
                county=county,
                organisation_id=organisation_id,
                tried=search.tried,
                reason=self._failure_reason(search, organisation_id),
                failed_at=now,
                trigger=trigger,
                excluded=search.excluded,
                transfer_id=transfer_id,
            )
            mediator_id = None
            target = organisation_id
        for _ in range(10):
            doc = self._decision_doc(
                decision_id=decision_id,
                case=case,
                county=county,
                trigger=trigger,
                outcome=outcome,
                mediator_id=mediator_id,
                organisation_id=target,
                by="system:registry",
                payload=payload,
            )
            stored = await self.repo.insert_decision(doc)
            if stored == "inserted":
                break
            if stored == "exists":  # a redelivery: the decision was stored before
                raced = await self.repo.get_decision(decision_id)
                if raced is not None:
                    await self._apply(raced)
                return
            case = await self.repo.next_decision(needs.case_id, scan=True)
        else:
            raise RuntimeError("no free decision number after 10 attempts")
        self.metrics.assignments.labels(county, outcome).inc()
        if mediator_id is not None:
            self.metrics.load.labels(county).observe(
                search.ranked[0].breakdown.get("load", 0) + 1 if search.ranked else 1
            )
        else:
            log.warning("no eligible mediator", case_id=needs.case_id, tried=len(search.tried))
        await self._apply(doc)

    def _decision_doc(
        self,
        *,
        decision_id: str,
        case: CaseView,
        county: str,
        trigger: str,
        outcome: str,
        mediator_id: str | None,
        organisation_id: str | None,
        by: str,
        payload: EventData,
    ) -> Document:
        at = self.clock.now()
        event = new_event(payload, source=SOURCE, subject=case.id, county=county, id=decision_id, time=at)
        return {
            "_id": decision_id,
            "case_id": case.id,
            "seq": case.next_seq,
            "county": county,
            "trigger": trigger,
            "outcome": outcome,
            "mediator_id": mediator_id,
            "previous_mediator_id": case.mediator_id,
            "organisation_id": organisation_id,
            "at": at,
            "by": by,
            "event": payload.model_dump(mode="json"),
            **outbox_fields([(topics.ASSIGNMENTS, event)]),
        }

    async def _apply(self, decision: Document) -> None:
        """Make a stored decision the case's current one (unless superseded), then publish."""
        fields: Document = {
            "mediator_id": decision.get("mediator_id"),
            "decision_id": decision["_id"],
            "assigned_at": decision["at"],
        }
        if decision.get("organisation_id"):
            fields["organisation_id"] = decision["organisation_id"]
        case_id, seq = decision["case_id"], int(decision["seq"])
        await self.repo.apply_decision(case_id, seq, fields, holder=decision.get("mediator_id"))
        await self._settle(case_id, seq, fields, holder=decision.get("mediator_id"))
        if decision.get("mediator_id"):
            await self.repo.record_grant(
                decision["mediator_id"], day=decision["at"].date(), case_id=decision["case_id"]
            )
        if decision.get(OUTBOX):
            await self.relay.flush(
                self.repo.decisions, decision["_id"], decision[OUTBOX], rev=decision.get(OUTBOX_REV)
            )

    async def _settle(self, case_id: str, seq: int, fields: Document, *, holder: str | None) -> None:
        """Read the projection back and repair what a concurrent write to the same case
        (another topic, or a centre user) may have overwritten: FerretDB 1.24 does not
        apply concurrent updates of one document atomically."""
        for _ in range(3):
            case = await self.repo.get_case(case_id)
            if case is None:
                return
            if case.seq < seq:
                await self.repo.apply_decision(case_id, seq, fields, holder=holder)
                continue
            if case.closed and case.holder is not None:
                await self.repo.close_case(case_id, {})
                continue
            return

    # -- search -------------------------------------------------------------------------
    async def search(self, needs: CaseNeeds, *, county: str, start: str | None, today: date) -> Search:
        """The routed organisation first, then its parents, then the county centre."""
        found = Search()
        current = start or await self._county_centre(county)
        if start is None and current is None:
            found.skipped["-"] = "unrouted"
        since = today - timedelta(days=self.settings.fairness_window_days - 1)
        while (
            current and current not in found.tried and len(found.tried) <= self.settings.max_escalation_depth
        ):
            found.tried.append(current)
            org = await self.repo.get_organisation(current)
            if org is None:
                found.skipped[current] = "unknown_organisation"
            elif not org.active or not org.filed:
                found.skipped[current] = "organisation_inactive"
            else:
                mediators = await self.repo.mediators_of(org.id)
                ranking = rank(
                    org.id,
                    mediators,
                    await self._counts(mediators, needs, today=today, since=since),
                    needs,
                    today=today,
                    policy=self.policy,
                )
                found.excluded.extend(ranking.excluded)
                if ranking.ranked:
                    best = ranking.ranked[0].mediator_id
                    found.organisation = org
                    found.mediator = next(m for m in mediators if m.id == best)
                    found.ranked = ranking.ranked
                    return found
            parent = org.parent_id if org is not None else None
            if parent and parent not in found.tried:
                current = parent
            else:
                centre = await self._county_centre(county)
                current = centre if centre not in found.tried else None
        return found

    async def _counts(
        self, mediators: Sequence[MediatorDoc], needs: CaseNeeds, *, today: date, since: date
    ) -> dict[str, Counts]:
        """Live load and recent assignments of the mediators that pass the fixed rules."""
        wanted = [m for m in mediators if not prefilter(m, needs, today=today, policy=self.policy)]

        async def one(m: MediatorDoc) -> tuple[str, Counts]:
            load, recent = await asyncio.gather(
                self.repo.load(m.id),
                self.repo.recent_assignments(m.id, since=since),
            )
            return m.id, Counts(load=load, recent=recent)

        return dict(await asyncio.gather(*(one(m) for m in wanted)))

    async def _county_centre(self, county: str) -> str | None:
        centres = [
            o
            for o in await self.repo.organisations_in(county)
            if o.kind == OrganisationKind.CENTRE and o.level == "county" and o.active
        ]
        return min(centres, key=lambda o: o.id).id if centres else None

    async def _reason(self, search: Search, needs: CaseNeeds, escalated_from: str | None) -> str:
        assert search.mediator is not None and search.organisation is not None
        from_name = None
        if escalated_from:
            origin = await self.repo.get_organisation(escalated_from)
            why = summarise_exclusions([e for e in search.excluded if e.organisation_id == escalated_from])
            from_name = f"{origin.name if origin else escalated_from}（{why}）"
        return explain(
            search.mediator,
            search.ranked[0],
            needs,
            organisation_name=search.organisation.name,
            escalated_from_name=from_name,
            window_days=self.settings.fairness_window_days,
        )

    def _failure_reason(self, search: Search, organisation_id: str | None) -> str:
        if not search.tried:
            return (
                "案件未分流到调解组织，且所在县区没有一站式调解中心"
                " / case has no organisation and the county has no centre"
            )
        return (
            f"已逐级查找{len(search.tried)}个调解组织，均无符合条件的调解员：{summarise_exclusions(search.excluded)}"
            f" / no eligible mediator in {len(search.tried)} organisation(s) up the hierarchy"
        )

    # -- manual reassignment -------------------------------------------------------------
    async def reassign(
        self,
        *,
        case_id: str,
        mediator_id: str,
        reason: str,
        by: str,
        counties: Sequence[str] | None,
        override_capacity: bool = False,
        idempotency_key: str | None = None,
    ) -> DecisionDoc:
        """A centre user gives a case to another mediator, with a reason (an event too)."""
        async with self.locks.hold(case_id):
            return await self._reassign_locked(
                case_id=case_id,
                mediator_id=mediator_id,
                reason=reason,
                by=by,
                counties=counties,
                override_capacity=override_capacity,
                idempotency_key=idempotency_key,
            )

    async def _reassign_locked(
        self,
        *,
        case_id: str,
        mediator_id: str,
        reason: str,
        by: str,
        counties: Sequence[str] | None,
        override_capacity: bool,
        idempotency_key: str | None,
    ) -> DecisionDoc:
        case = await self.repo.get_case(case_id, counties=counties)
        if case is None:
            raise NotFound("案件", "case")
        decision_id = derived_id(f"{case_id}/{idempotency_key}", "manual") if idempotency_key else None
        if decision_id and (done := await self.repo.get_decision(decision_id)) is not None:
            return DecisionDoc.model_validate(done)
        if case.closed:
            raise IllegalTransition(
                current=case.closed_status or "closed", action="reassign", current_zh="已结束"
            )
        mediator = await self.repo.get_mediator(mediator_id, counties=counties)
        if mediator is None:
            raise Invalid([FieldError("mediator_id", "unknown_mediator", "调解员不存在", "no such mediator")])
        if mediator.id == case.mediator_id:
            raise Conflict("案件已由该调解员承办", "the case is already assigned to this mediator")
        today = self.clock.now().date()
        needs = CaseNeeds(
            case_id=case_id,
            category=case.category or Category.OTHER,
            risk_level=case.risk_level or RiskLevel.ORDINARY,
            party_keys=frozenset(case.party_keys),
        )
        organisation_id = (
            case.organisation_id
            if case.organisation_id in mediator.organisation_ids
            else mediator.organisation_ids[0]
        )
        since = today - timedelta(days=self.settings.fairness_window_days - 1)
        counts = {
            mediator.id: Counts(
                load=await self.repo.load(mediator.id),
                recent=await self.repo.recent_assignments(mediator.id, since=since),
            )
        }
        ranking = rank(organisation_id, [mediator], counts, needs, today=today, policy=self.policy)
        refused = [r for e in ranking.excluded for r in e.reasons]
        if override_capacity and refused == ["at_capacity"]:
            refused = []
            parts_from = rank(
                organisation_id,
                [mediator],
                {mediator.id: Counts(load=0, recent=counts[mediator.id].recent)},
                needs,
                today=today,
                policy=self.policy,
            ).ranked
            chosen = parts_from[0].model_copy(
                update={"breakdown": {**parts_from[0].breakdown, "load": float(counts[mediator.id].load)}}
            )
        elif refused:
            raise Invalid([FieldError("mediator_id", r, *REASONS[r]) for r in refused])
        else:
            chosen = ranking.ranked[0]
        now = self.clock.now()
        for attempt in range(10):
            case = await self.repo.next_decision(case_id, scan=attempt > 0)
            payload = MediatorAssigned(
                case_id=case_id,
                county=case.county or mediator.county,
                organisation_id=organisation_id,
                mediator_id=mediator.id,
                mediator_name=mediator.name,
                score=chosen.score,
                breakdown=chosen.breakdown,
                reason=reason,
                manual=True,
                assigned_at=now,
                trigger="manual",
                assigned_by=by,
                previous_mediator_id=case.mediator_id,
                tried=[organisation_id],
            )
            doc = self._decision_doc(
                decision_id=decision_id or derived_id(f"{case_id}/seq-{case.next_seq}", "manual"),
                case=case,
                county=payload.county,
                trigger="manual",
                outcome="manual",
                mediator_id=mediator.id,
                organisation_id=organisation_id,
                by=by,
                payload=payload,
            )
            stored = await self.repo.insert_decision(doc)
            if stored == "exists":
                raced = await self.repo.get_decision(doc["_id"])
                assert raced is not None
                return DecisionDoc.model_validate(raced)
            if stored == "inserted":
                break
        else:
            raise Conflict("案件正被同时调整，请稍后重试", "the case is being reassigned concurrently; retry")
        self.metrics.assignments.labels(payload.county, "manual").inc()
        self.metrics.load.labels(payload.county).observe(counts[mediator.id].load + 1)
        await self._apply(doc)
        return DecisionDoc.model_validate(doc)

    # -- reads --------------------------------------------------------------------------
    async def case_assignment(
        self, *, case_id: str, counties: Sequence[str] | None
    ) -> tuple[CaseView, list[DecisionDoc]]:
        case = await self.repo.get_case(case_id, counties=counties)
        if case is None:
            raise NotFound("案件", "case")
        return case, await self.repo.decisions_of(case_id)
