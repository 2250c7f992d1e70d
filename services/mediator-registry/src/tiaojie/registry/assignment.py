"""Who gets which case: automatic assignment with escalation, manual reassignment, and
load following the case.

Two kinds of aggregate take part, each changed only through the storage engine, so any
replica may decide at any time: the case (cases.py) and the chosen mediator's load ledger
(ledger.py). A decision is planned on the case, reserved in the mediator's ledger (where
the capacity is checked against every concurrent reservation, from any replica), then
concluded on the case, whose revision publishes the event. A redelivered trigger finds
its decision applied and changes nothing, or finds its plan pending and completes it; a
change that ends a reservation releases it afterwards. Decision records (`decisions`)
are audit facts inserted once, from the case's state.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from tiaojie.contracts import topics
from tiaojie.contracts.common import CaseStatus, Category, RiskLevel
from tiaojie.contracts.envelope import CloudEvent, EventData, derived_id, new_event
from tiaojie.contracts.intake import CaseEvent, CaseRegistered, CaseTransferred, RiskRaised
from tiaojie.contracts.referral import TransferAccepted
from tiaojie.contracts.registry import AssignmentFailed, MediatorAssigned
from tiaojie.registry import cases, ledger
from tiaojie.registry.eligibility import REASONS
from tiaojie.registry.matching import CaseNeeds, Counts, grade_number, rank
from tiaojie.registry.metrics import RegistryMetrics
from tiaojie.registry.models import CaseView, DecisionDoc, MediatorDoc
from tiaojie.registry.repository import RegistryRepository
from tiaojie.registry.search import Search, Searcher
from tiaojie.registry.settings import RegistrySettings
from tiaojie.runtime.clock import Clock
from tiaojie.runtime.errors import Conflict, FieldError, IllegalTransition, Invalid, NotFound
from tiaojie.runtime.logging import get_logger
from tiaojie.runtime.mongo import Document
from tiaojie.runtime.revisions import Contention, Outcome

log = get_logger(__name__)

SOURCE = topics.service_source("registry")
# Case events after which nobody works on the case any more.
CLOSING = frozenset(
    {CaseStatus.RESOLVED, CaseStatus.FAILED, CaseStatus.WITHDRAWN, CaseStatus.ARCHIVED, CaseStatus.REJECTED}
)
SYSTEM = "system:registry"
# Rounds of plan, reservation and conclusion before a decision gives up (the consumer then
# retries the message): a round is lost only to a concurrent decision of the same case or a
# mediator filled meanwhile.
ATTEMPTS = 10


@dataclass(frozen=True)
class Failed:
    """Nobody can take the case: the event to publish and the organisation it stays with."""

    payload: AssignmentFailed
    organisation_id: str | None


Planner = Callable[[], Awaitable["Document | Failed"]]


class AssignmentService:
    """Assignment rules; no Kafka or HTTP in here (the engine publishes the events)."""

    def __init__(
        self,
        *,
        repository: RegistryRepository,
        settings: RegistrySettings,
        clock: Clock,
        metrics: RegistryMetrics,
    ) -> None:
        self.repo = repository
        self.settings = settings
        self.searcher = Searcher(repository=repository, settings=settings)
        self.policy = self.searcher.policy
        self.clock = clock
        self.metrics = metrics

    # -- triggers ----------------------------------------------------------------------
    async def case_registered(self, *, event: CloudEvent, case: CaseRegistered) -> None:
        """A new case gets a mediator in its routed organisation, or up the hierarchy."""
        facts = {
            "county": case.county,
            "category": str(case.category),
            "risk_level": str(case.risk_level),
            "party_keys": case.party_keys,
        }
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
            facts=facts,
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
        facts = {
            "county": transfer.county,
            "category": str(category),
            "risk_level": str(risk),
            "party_keys": party_keys,
        }
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
            facts=facts,
            transfer_id=transfer.transfer_id,
        )

    async def risk_raised(self, *, event: CloudEvent, risk: RiskRaised) -> None:
        """A case rated graver after assignment: if its mediator's grade no longer suits
        the risk, it is decided again (escalating as usual) and the event says why."""
        remembered = await self.repo.case_store.apply(
            risk.case_id,
            cases.remember(case_id=risk.case_id, facts={"risk_level": str(risk.risk_level)}),
            verify_noop=True,
        )
        await self.settle(outcome=remembered)
        if remembered.after is None:
            return
        case = CaseView.model_validate(remembered.after)
        if case.closed or case.mediator_id is None:
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
            facts={},
        )

    async def case_event(self, *, case: CaseEvent) -> None:
        """Closing events end the holder's load; a transfer releases it (idempotent)."""
        if case.status in CLOSING:
            decide = cases.close(case_id=case.case_id, status=str(case.status), at=case.at)
        elif isinstance(case, CaseTransferred) and case.organisation_id:
            decide = cases.move(case_id=case.case_id, organisation_id=case.organisation_id, at=case.at)
        else:
            return
        outcome = await self.repo.case_store.apply(case.case_id, decide, verify_noop=True)
        await self.settle(outcome=outcome)

    # -- automatic decisions ------------------------------------------------------------
    async def _decide(
        self,
        *,
        decision_id: str,
        needs: CaseNeeds,
        county: str,
        organisation_id: str | None,
        trigger: str,
        facts: Document,
        transfer_id: str | None = None,
    ) -> None:
        now = self.clock.now()

        async def planner() -> Document | Failed:
            search = await self.searcher.search(needs, county=county, start=organisation_id, today=now.date())
            if search.mediator is None or search.organisation is None:
                log.warning("no eligible mediator", case_id=needs.case_id, tried=len(search.tried))
                payload = AssignmentFailed(
                    case_id=needs.case_id,
                    county=county,
                    organisation_id=organisation_id,
                    tried=search.tried,
                    reason=self.searcher.failure_reason(search),
                    failed_at=now,
                    trigger=trigger,
                    excluded=search.excluded,
                    transfer_id=transfer_id,
                )
                return Failed(payload, organisation_id)
            return await self._plan_of_search(
                search,
                decision_id=decision_id,
                needs=needs,
                county=county,
                organisation_id=organisation_id,
                trigger=trigger,
                transfer_id=transfer_id,
                at=now,
            )

        await self._carry_out(
            case_id=needs.case_id, decision_id=decision_id, facts=facts, planner=planner, at=now
        )

    async def _plan_of_search(
        self,
        search: Search,
        *,
        decision_id: str,
        needs: CaseNeeds,
        county: str,
        organisation_id: str | None,
        trigger: str,
        transfer_id: str | None,
        at: datetime,
    ) -> Document:
        """The plan of the search's best candidate (the event, but for the previous mediator)."""
        assert search.mediator is not None and search.organisation is not None
        chosen = search.ranked[0]
        escalated_from = organisation_id if search.organisation.id != organisation_id else None
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
            reason=await self.searcher.reason(search, needs, escalated_from),
            assigned_at=at,
            trigger=trigger,
            tried=search.tried,
            excluded=search.excluded,
            transfer_id=transfer_id,
        )
        return _plan(
            decision_id=decision_id,
            mediator=search.mediator,
            payload=payload,
            outcome="escalated" if escalated_from else "assigned",
            by=SYSTEM,
            capacity=self.policy.capacity(search.mediator),
            load=chosen.breakdown.get("load", 0),
            at=at,
        )

    # -- the protocol ---------------------------------------------------------------------
    async def _carry_out(
        self,
        *,
        case_id: str,
        decision_id: str,
        facts: Document,
        planner: Planner,
        at: datetime,
        replan_when_full: bool = True,
    ) -> Document | None:
        """Plan, reserve and conclude one decision; the case's state once it is applied
        (None if the case closed first). A mediator found full at the reservation is
        searched around (automatic decisions) or refused with 422 (a manual one)."""
        state = await self.repo.case_store.get(case_id)
        for _ in range(ATTEMPTS):
            if cases.applied(state, decision_id):
                await self.finish(state=state)
                return state
            if (state or {}).get("closed"):
                return None
            plan = cases.plan_of(state, decision_id)
            if plan is None:
                planned = await planner()
                if isinstance(planned, Failed):
                    failed = await self.repo.case_store.apply(
                        case_id,
                        cases.conclude_failed(
                            case_id=case_id,
                            decision_id=decision_id,
                            organisation_id=planned.organisation_id,
                            facts=facts,
                            record=_failure_record(decision_id, planned.payload),
                        ),
                    )
                    if failed.fresh:
                        await self.settle(outcome=failed)
                        self.metrics.assignments.labels(planned.payload.county, "failed").inc()
                        return failed.after
                    state = failed.after
                    continue
                intended = await self.repo.case_store.apply(
                    case_id, cases.intend(case_id=case_id, plan=planned, facts=facts), verify_noop=True
                )
                await self.settle(outcome=intended)
                state = intended.after
                # Ours, or the plan of a concurrent writer of the same decision: completed alike.
                plan = cases.plan_of(state, decision_id)
                if plan is None:
                    continue
            if not await self._reserve(plan, case_id=case_id, at=at):
                state = await self._drop(case_id, plan)  # the mediator filled up meanwhile
                if not replan_when_full:
                    raise Invalid([FieldError("mediator_id", "at_capacity", *REASONS["at_capacity"])])
                continue
            concluded = await self.repo.case_store.apply(
                case_id,
                cases.conclude(case_id=case_id, decision_id=decision_id, token=plan["token"], record=_record),
            )
            if concluded.fresh:
                await self.settle(outcome=concluded)
                self.metrics.assignments.labels(plan["county"], plan["outcome"]).inc()
                self.metrics.load.labels(plan["county"]).observe(plan["load"] + 1)
                return concluded.after
            state = concluded.after
            mine = (plan["mediator_id"], plan["token"])
            if mine not in cases.references(state):  # another writer got there first
                await self.release(refs=[mine], revoke_grant=True)
        raise Contention(f"case {case_id}: decision kept being overtaken")

    async def _reserve(self, plan: Document, *, case_id: str, at: datetime) -> bool:
        """Take the plan's place in its mediator's ledger; False if the mediator is full."""
        today = at.date()
        outcome = await self.repo.load_store.apply(
            plan["mediator_id"],
            ledger.acquire(
                token=plan["token"],
                case_id=case_id,
                capacity=plan.get("capacity"),
                today=today,
                since=self.searcher.window_start(today),
                at=at,
            ),
            verify_noop=True,  # a refusal on a lagging ledger is confirmed on its head
        )
        return ledger.holds(outcome.after, plan["token"])

    async def _drop(self, case_id: str, plan: Document) -> Document | None:
        """Abandon a plan whose mediator is full; the case's state after."""
        outcome = await self.repo.case_store.apply(
            case_id, cases.abandon(case_id=case_id, token=plan["token"])
        )
        await self.settle(outcome=outcome)
        return outcome.after

    async def settle(self, *, outcome: Outcome) -> None:
        """After a change of a case: release the reservations it ended (and those the change
        before it ended, whose writer may have crashed), record a new decision."""
        if not outcome.fresh:
            await self.release(refs=cases.prior_of(outcome.after))
            return
        before, after = outcome.before or {}, outcome.after or {}
        await self.release(refs=[*cases.prior_of(before), *cases.prior_of(after)])
        if after.get("decision") and after.get("decision_id") != before.get("decision_id"):
            await self.repo.record_decisions([d for d in (before.get("decision"), after["decision"]) if d])

    async def finish(self, *, state: Document | None) -> None:
        """Finish what the writer of a case's last change may have left undone (it crashed,
        or this is a redelivery): release what the change ended, record its decision."""
        await self.release(refs=cases.prior_of(state))
        if state and state.get("decision"):
            await self.repo.record_decisions([state["decision"]])

    async def release(self, *, refs: Iterable[tuple[str, str]], revoke_grant: bool = False) -> None:
        """Drop reservations from their mediators' ledgers (those not there are skipped)."""
        since = self.searcher.window_start(self.clock.now().date())
        await asyncio.gather(
            *(
                self.repo.load_store.apply(m, ledger.release(token=t, since=since, revoke_grant=revoke_grant))
                for m, t in sorted(set(refs))
            )
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
        case = await self.repo.get_case(case_id, counties=counties)
        if case is None:
            raise NotFound("案件", "case")
        key = idempotency_key or uuid.uuid4().hex
        decision_id = derived_id(f"{case_id}/{key}", "manual")
        if decision_id in case.applied:
            return await self._decision(case_id, decision_id)
        if case.closed:
            raise IllegalTransition(
                current=case.closed_status or "closed", action="reassign", current_zh="已结束"
            )
        mediator = await self.repo.get_mediator(mediator_id, counties=counties)
        if mediator is None:
            raise Invalid([FieldError("mediator_id", "unknown_mediator", "调解员不存在", "no such mediator")])
        if mediator.id == case.mediator_id:
            raise Conflict("案件已由该调解员承办", "the case is already assigned to this mediator")
        now = self.clock.now()
        plan = await self._manual_plan(
            case, mediator, decision_id=decision_id, reason=reason, by=by, override=override_capacity, at=now
        )

        async def planner() -> Document:
            # A fresh token each time: a token whose plan was dropped must never come back.
            return {**plan, "token": uuid.uuid4().hex}

        state = await self._carry_out(
            case_id=case_id,
            decision_id=decision_id,
            facts={},
            planner=planner,
            at=now,
            replan_when_full=False,
        )
        if state is None:
            raise IllegalTransition(current="closed", action="reassign", current_zh="已结束")
        return await self._decision(case_id, decision_id)

    async def _manual_plan(
        self,
        case: CaseView,
        mediator: MediatorDoc,
        *,
        decision_id: str,
        reason: str,
        by: str,
        override: bool,
        at: datetime,
    ) -> Document:
        """The plan of a manual reassignment, refused (422) for a mediator the rules exclude."""
        today = at.date()
        needs = CaseNeeds(
            case_id=case.id,
            category=case.category or Category.OTHER,
            risk_level=case.risk_level or RiskLevel.ORDINARY,
            party_keys=frozenset(case.party_keys),
        )
        organisation_id = (
            case.organisation_id
            if case.organisation_id in mediator.organisation_ids
            else mediator.organisation_ids[0]
        )
        counts = await self.searcher.counts(mediators=[mediator], needs=needs, today=today)
        ranking = rank(organisation_id, [mediator], counts, needs, today=today, policy=self.policy)
        refused = [r for e in ranking.excluded for r in e.reasons]
        if override and refused == ["at_capacity"]:
            free = {mediator.id: Counts(load=0, recent=counts[mediator.id].recent)}
            parts_from = rank(
                organisation_id, [mediator], free, needs, today=today, policy=self.policy
            ).ranked
            chosen = parts_from[0].model_copy(
                update={"breakdown": {**parts_from[0].breakdown, "load": float(counts[mediator.id].load)}}
            )
        elif refused:
            raise Invalid([FieldError("mediator_id", r, *REASONS[r]) for r in refused])
        else:
            chosen = ranking.ranked[0]
        county = case.county or mediator.county
        payload = MediatorAssigned(
            case_id=case.id,
            county=county,
            organisation_id=organisation_id,
            mediator_id=mediator.id,
            mediator_name=mediator.name,
            score=chosen.score,
            breakdown=chosen.breakdown,
            reason=reason,
            manual=True,
            assigned_at=at,
            trigger="manual",
            assigned_by=by,
            tried=[organisation_id],
        )
        return _plan(
            decision_id=decision_id,
            mediator=mediator,
            payload=payload,
            outcome="manual",
            by=by,
            capacity=None if override else self.policy.capacity(mediator),
            load=counts[mediator.id].load,
            at=at,
        )

    async def _decision(self, case_id: str, decision_id: str) -> DecisionDoc:
        for decision in reversed(await self.repo.decisions_of(case_id)):
            if decision.id == decision_id:
                return decision
        raise NotFound("分配决定", "decision")

    # -- reads --------------------------------------------------------------------------
    async def case_assignment(
        self, *, case_id: str, counties: Sequence[str] | None
    ) -> tuple[CaseView, list[DecisionDoc]]:
        """A case's holder and every decision about it."""
        case = await self.repo.get_case(case_id, counties=counties)
        if case is None:
            raise NotFound("案件", "case")
        return case, await self.repo.decisions_of(case_id)


def _plan(
    *,
    decision_id: str,
    mediator: MediatorDoc,
    payload: MediatorAssigned,
    outcome: str,
    by: str,
    capacity: int | None,
    load: float,
    at: datetime,
) -> Document:
    """A pending decision as the case keeps it: who, the reservation's token, the limit to
    reserve under (None: overridden), and the event but for the previous mediator."""
    return {
        "decision_id": decision_id,
        "token": uuid.uuid4().hex,
        "mediator_id": mediator.id,
        "organisation_id": payload.organisation_id,
        "county": payload.county,
        "trigger": payload.trigger,
        "outcome": outcome,
        "by": by,
        "capacity": capacity,
        "load": load,
        "at": at,
        "payload": payload.model_dump(mode="json", exclude={"previous_mediator_id"}),
    }


def _decision_doc(
    state: Document, *, decision_id: str, payload: EventData, fields: Document, at: datetime
) -> tuple[Document, tuple[str, CloudEvent]]:
    """A decision's record (numbered after the case's last) and its event."""
    county = fields["county"]
    event = new_event(
        payload, source=SOURCE, subject=str(state["_id"]), county=county, id=decision_id, time=at
    )
    doc = {
        "_id": decision_id,
        "case_id": state["_id"],
        "seq": int(state.get("seq", 0)) + 1,
        "previous_mediator_id": state.get("mediator_id"),
        "at": at,
        "event": payload.model_dump(mode="json"),
        **fields,
    }
    return doc, (topics.ASSIGNMENTS, event)


def _record(state: Document, plan: Document | None) -> tuple[Document, tuple[str, CloudEvent]]:
    """The record and event of a planned assignment, decided on the case's state."""
    assert plan is not None
    payload = MediatorAssigned.model_validate(
        {**plan["payload"], "previous_mediator_id": state.get("mediator_id")}
    )
    fields = {
        "county": plan["county"],
        "trigger": plan["trigger"],
        "outcome": plan["outcome"],
        "mediator_id": plan["mediator_id"],
        "organisation_id": plan["organisation_id"],
        "by": plan["by"],
    }
    return _decision_doc(
        state, decision_id=plan["decision_id"], payload=payload, fields=fields, at=plan["at"]
    )


def _failure_record(decision_id: str, payload: AssignmentFailed) -> cases.Record:
    def record(state: Document, plan: Document | None) -> tuple[Document, tuple[str, CloudEvent]]:
        fields = {
            "county": payload.county,
            "trigger": payload.trigger,
            "outcome": "failed",
            "mediator_id": None,
            "organisation_id": payload.organisation_id,
            "by": SYSTEM,
        }
        return _decision_doc(
            state, decision_id=decision_id, payload=payload, fields=fields, at=payload.failed_at
        )

    return record
