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

The consumer hands over a batch of case events at a time (`case_events`): the decisions
of a batch are planned in memory against one read and written with one `apply_many` per
step (`decide_many`); whatever does not go through there is decided again alone.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from tiaojie.contracts.common import CaseStatus, Category, RiskLevel
from tiaojie.contracts.envelope import CloudEvent, derived_id
from tiaojie.contracts.intake import CaseEvent, CaseRegistered, CaseTransferred, RiskRaised
from tiaojie.contracts.registry import AssignmentFailed, MediatorAssigned
from tiaojie.registry import cases, ledger
from tiaojie.registry.decisions import (
    SYSTEM,
    Failed,
    Planner,
    Trigger,
    assigned_record,
    failure_record,
    pending_plan,
    registered,
    transferred,
)
from tiaojie.registry.eligibility import REASONS
from tiaojie.registry.matching import CaseNeeds, Counts, grade_number, rank
from tiaojie.registry.metrics import RegistryMetrics
from tiaojie.registry.models import CaseView, DecisionDoc, MediatorDoc
from tiaojie.registry.repository import RegistryRepository
from tiaojie.registry.search import Reads, Search, Searcher
from tiaojie.registry.settings import RegistrySettings
from tiaojie.runtime.clock import Clock
from tiaojie.runtime.errors import Conflict, FieldError, IllegalTransition, Invalid, NotFound
from tiaojie.runtime.logging import get_logger
from tiaojie.runtime.mongo import Document
from tiaojie.runtime.revisions import Contention, Decide, Outcome

log = get_logger(__name__)

# Case events after which nobody works on the case any more.
CLOSING = frozenset(
    {CaseStatus.RESOLVED, CaseStatus.FAILED, CaseStatus.WITHDRAWN, CaseStatus.ARCHIVED, CaseStatus.REJECTED}
)
# Rounds of plan, reservation and conclusion before a decision gives up (the consumer then
# retries the message): a round is lost only to a concurrent decision of the same case or a
# mediator filled meanwhile.
ATTEMPTS = 10


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
    async def case_events(self, *, events: Sequence[tuple[CloudEvent, CaseRegistered | CaseEvent]]) -> None:
        """A batch of case events (the consumer's, in offset order): each case's events in
        their order, the cases of one round together (closings, risks, then one
        `decide_many` for the registrations and transfers). Idempotent, so any
        sub-sequence that keeps each case's order gives the same state."""
        by_case: dict[str, list[tuple[CloudEvent, CaseRegistered | CaseEvent]]] = {}
        for event, data in events:
            by_case.setdefault(data.case_id, []).append((event, data))
        for n in range(max((len(v) for v in by_case.values()), default=0)):
            round_ = [v[n] for v in by_case.values() if len(v) > n]  # one event per case
            closing = [
                d
                for _, d in round_
                if isinstance(d, CaseEvent) and not isinstance(d, RiskRaised | CaseTransferred)
            ]
            risks = [(e, d) for e, d in round_ if isinstance(d, RiskRaised)]
            triggers = [
                registered(e, d) if isinstance(d, CaseRegistered) else transferred(e, d)
                for e, d in round_
                if isinstance(d, CaseRegistered) or (isinstance(d, CaseTransferred) and d.organisation_id)
            ]
            await self.close_many(closing=closing)
            await asyncio.gather(*(self.risk_raised(event=e, risk=d) for e, d in risks))
            await self.decide_many(triggers=triggers)

    async def case_registered(self, *, event: CloudEvent, case: CaseRegistered) -> None:
        """A new case gets a mediator in its routed organisation, or up the hierarchy."""
        await self._decide(registered(event, case))

    async def case_transferred(self, *, event: CloudEvent, moved: CaseTransferred) -> None:
        """A case intake moved to another organisation: its holder is released and it gets
        a mediator there (one decision: the move is recorded with the plan)."""
        if moved.organisation_id:
            await self._decide(transferred(event, moved))

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
            Trigger(
                case_id=risk.case_id,
                decision_id=derived_id(event.id, "risk_raised"),
                county=risk.county,
                organisation_id=case.organisation_id or risk.organisation_id,
                trigger="risk_raised",
                facts={},
                category=case.category or risk.category or Category.OTHER,
                risk_level=str(risk.risk_level),
                party_keys=tuple(case.party_keys or risk.party_keys),
            )
        )

    async def case_event(self, *, case: CaseEvent) -> None:
        """A closing event ends the holder's load and every plan (idempotent)."""
        await self.close_many(closing=[case])

    async def close_many(self, *, closing: Sequence[CaseEvent]) -> None:
        """Closing events of distinct cases: closed in one round, their reservations released."""
        decisions = {
            c.case_id: cases.close(case_id=c.case_id, status=str(c.status), at=c.at)
            for c in closing
            if c.status in CLOSING
        }
        if decisions:
            outcomes = await self.repo.case_store.apply_many(decisions, verify_noop=True)
            await self.settle_many(outcomes=list(outcomes.values()))

    # -- automatic decisions ------------------------------------------------------------
    async def _decide(self, trigger: Trigger) -> None:
        """One automatic decision, alone: plan, reserve, conclude (see `_carry_out`)."""
        now = self.clock.now()

        async def planner(state: Document | None) -> Document | Failed:
            return await self._planned(trigger, state, reads=Reads(self.repo), at=now)

        await self._carry_out(
            case_id=trigger.case_id,
            decision_id=trigger.decision_id,
            facts=trigger.facts,
            planner=planner,
            at=now,
        )

    async def _planned(
        self, trigger: Trigger, state: Document | None, *, reads: Reads, at: datetime
    ) -> Document | Failed:
        """The plan of a decision from a search up the hierarchy, or why nobody can take it."""
        needs = trigger.needs(state)
        search = await self.searcher.search(
            needs, county=trigger.county, start=trigger.organisation_id, today=at.date(), reads=reads
        )
        if search.mediator is None or search.organisation is None:
            log.warning("no eligible mediator", case_id=needs.case_id, tried=len(search.tried))
            payload = AssignmentFailed(
                case_id=needs.case_id,
                county=trigger.county,
                organisation_id=trigger.organisation_id,
                tried=search.tried,
                reason=self.searcher.failure_reason(search),
                failed_at=at,
                trigger=trigger.trigger,
                excluded=search.excluded,
                transfer_id=trigger.transfer_id,
            )
            return Failed(payload, trigger.organisation_id)
        return await self._plan_of_search(
            search,
            decision_id=trigger.decision_id,
            needs=needs,
            county=trigger.county,
            organisation_id=trigger.organisation_id,
            trigger=trigger.trigger,
            transfer_id=trigger.transfer_id,
            at=at,
            reads=reads,
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
        reads: Reads,
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
            reason=await self.searcher.reason(search, needs, escalated_from, reads=reads),
            assigned_at=at,
            trigger=trigger,
            tried=search.tried,
            excluded=search.excluded,
            transfer_id=transfer_id,
        )
        return pending_plan(
            decision_id=decision_id,
            mediator=search.mediator,
            payload=payload,
            outcome="escalated" if escalated_from else "assigned",
            by=SYSTEM,
            capacity=self.policy.capacity(search.mediator),
            load=chosen.breakdown.get("load", 0),
            at=at,
        )

    async def decide_many(self, *, triggers: Sequence[Trigger]) -> None:
        """Automatic decisions for distinct cases together: the cases read once, every
        search planned in memory against one read of the organisations and ledgers
        (counting the places the batch plans, so two of its cases never both take a last
        place), the plans recorded with one `apply_many`, each mediator's reservations in
        one revision of their ledger, the decisions concluded with one `apply_many` (their
        events published together). Whatever does not go through (a plan a crashed writer
        left, a claim lost to another replica, a mediator full on their ledger's head)
        is completed by the one-case path, which decides it again."""
        if not triggers:
            return
        if len(triggers) == 1:
            await self._decide(triggers[0])
            return
        now = self.clock.now()
        states = await self.repo.case_store.get_many([t.case_id for t in triggers])
        alone: list[Trigger] = []
        fresh: list[Trigger] = []
        done: list[Document] = []
        for t in triggers:
            state = states.get(t.case_id)
            if cases.applied(state, t.decision_id):
                done.append(state or {})  # a redelivery: finish what its writer may have left
            elif (state or {}).get("closed"):
                continue
            elif cases.plan_of(state, t.decision_id) is not None:
                alone.append(t)  # a plan left by a writer that died: completed as it was planned
            else:
                fresh.append(t)
        await self.finish_many(states=done)
        reads = Reads(self.repo)
        await reads.prefetch(t.organisation_id for t in fresh if t.organisation_id)
        planned: dict[str, Document | Failed] = {}
        for t in fresh:  # in order: each search sees the places planned before it
            plan = await self._planned(t, states.get(t.case_id), reads=reads, at=now)
            if not isinstance(plan, Failed):
                reads.plan(plan["mediator_id"], t.case_id)
            planned[t.case_id] = plan
        by_case = {t.case_id: t for t in fresh}
        recorded = await self.repo.case_store.apply_many(
            {
                case_id: (
                    self._failure(by_case[case_id], plan)
                    if isinstance(plan, Failed)
                    else cases.intend(case_id=case_id, plan=plan, facts=by_case[case_id].facts)
                )
                for case_id, plan in planned.items()
            },
            verify_noop=True,
            known={case_id: states.get(case_id) for case_id in planned},
        )
        await self.settle_many(outcomes=list(recorded.values()))
        reserving: dict[str, Document] = {}
        for case_id, outcome in recorded.items():
            t, plan = by_case[case_id], planned[case_id]
            pending = cases.plan_of(outcome.after, t.decision_id)
            if isinstance(plan, Failed) and outcome.fresh:
                self.metrics.assignments.labels(plan.payload.county, "failed").inc()
            elif pending is None:
                alone.append(t)  # overtaken (applied elsewhere, or closed): finished alone
            else:
                reserving[case_id] = pending  # ours, or a concurrent writer's of the same decision
        held = await self._reserve_many(
            reserving, at=now, known=await reads.ledgers(p["mediator_id"] for p in reserving.values())
        )
        concluding = {c: p for c, p in reserving.items() if c in held}
        alone.extend(by_case[c] for c in reserving if c not in held)  # full on the ledger's head
        concluded = await self.repo.case_store.apply_many(
            {
                case_id: cases.conclude(
                    case_id=case_id,
                    decision_id=plan["decision_id"],
                    token=plan["token"],
                    record=assigned_record,
                )
                for case_id, plan in concluding.items()
            },
            known={case_id: recorded[case_id].after for case_id in concluding},
        )
        await self.settle_many(outcomes=list(concluded.values()))
        lost: list[tuple[str, str]] = []
        for case_id, outcome in concluded.items():
            plan = concluding[case_id]
            if outcome.fresh:
                self.metrics.assignments.labels(plan["county"], plan["outcome"]).inc()
                self.metrics.load.labels(plan["county"]).observe(plan["load"] + 1)
                continue
            mine = (plan["mediator_id"], plan["token"])
            if mine not in cases.references(outcome.after):  # another writer got there first
                lost.append(mine)
            alone.append(by_case[case_id])
        await self.release(refs=lost, revoke_grant=True)
        await asyncio.gather(*(self._decide(t) for t in alone))

    async def _reserve_many(
        self,
        plans: Mapping[str, Document],
        *,
        at: datetime,
        known: Mapping[str, Document | None] | None = None,
    ) -> set[str]:
        """Take the plans' places, each mediator's in one revision of their ledger (from
        the ledgers the search read, if given); the cases whose place is held."""
        by_mediator: dict[str, list[Document]] = defaultdict(list)
        for case_id, plan in plans.items():
            by_mediator[plan["mediator_id"]].append(
                {"token": plan["token"], "case_id": case_id, "capacity": plan.get("capacity")}
            )
        if not by_mediator:
            return set()
        today = at.date()
        since = self.searcher.window_start(today)
        outcomes = await self.repo.load_store.apply_many(
            {
                m: ledger.acquire_many(places=places, today=today, since=since, at=at)
                for m, places in by_mediator.items()
            },
            verify_noop=True,  # a refusal on a lagging ledger is confirmed on its head
            known=known,
        )
        return {
            case_id
            for case_id, plan in plans.items()
            if ledger.holds(outcomes[plan["mediator_id"]].after, plan["token"])
        }

    def _failure(self, trigger: Trigger, failed: Failed) -> Decide:
        return cases.conclude_failed(
            case_id=trigger.case_id,
            decision_id=trigger.decision_id,
            organisation_id=failed.organisation_id,
            facts=trigger.facts,
            record=failure_record(trigger.decision_id, failed.payload),
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
                planned = await planner(state)
                if isinstance(planned, Failed):
                    failed = await self.repo.case_store.apply(
                        case_id,
                        cases.conclude_failed(
                            case_id=case_id,
                            decision_id=decision_id,
                            organisation_id=planned.organisation_id,
                            facts=facts,
                            record=failure_record(decision_id, planned.payload),
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
                cases.conclude(
                    case_id=case_id, decision_id=decision_id, token=plan["token"], record=assigned_record
                ),
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
        await self.settle_many(outcomes=[outcome])

    async def settle_many(self, *, outcomes: Sequence[Outcome]) -> None:
        """`settle` for changes of many cases: one round of releases, one insert of records."""
        refs: list[tuple[str, str]] = []
        records: list[Document] = []
        for outcome in outcomes:
            if not outcome.fresh:
                refs.extend(cases.prior_of(outcome.after))
                continue
            before, after = outcome.before or {}, outcome.after or {}
            refs.extend([*cases.prior_of(before), *cases.prior_of(after)])
            if after.get("decision") and after.get("decision_id") != before.get("decision_id"):
                records.extend(d for d in (before.get("decision"), after["decision"]) if d)
        await self.release(refs=refs)
        if records:
            await self.repo.record_decisions(records)

    async def finish(self, *, state: Document | None) -> None:
        """Finish what the writer of a case's last change may have left undone (it crashed,
        or this is a redelivery): release what the change ended, record its decision."""
        await self.finish_many(states=[state] if state else [])

    async def finish_many(self, *, states: Sequence[Document]) -> None:
        """`finish` for many cases: one round of releases, one insert of records."""
        await self.release(refs=[ref for state in states for ref in cases.prior_of(state)])
        records = [state["decision"] for state in states if state.get("decision")]
        if records:
            await self.repo.record_decisions(records)

    async def release(self, *, refs: Iterable[tuple[str, str]], revoke_grant: bool = False) -> None:
        """Drop reservations from their mediators' ledgers, each mediator's in one revision
        (those not there are skipped)."""
        by_mediator: dict[str, set[str]] = defaultdict(set)
        for mediator_id, token in refs:
            by_mediator[mediator_id].add(token)
        if not by_mediator:
            return
        since = self.searcher.window_start(self.clock.now().date())
        await self.repo.load_store.apply_many(
            {
                m: ledger.release_many(tokens=tokens, since=since, revoke_grant=revoke_grant)
                for m, tokens in sorted(by_mediator.items())
            }
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

        async def planner(state: Document | None) -> Document:
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
        return pending_plan(
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
