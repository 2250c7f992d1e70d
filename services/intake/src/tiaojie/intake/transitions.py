"""The generic transition of a case: a pure change, applied through the runtime's storage engine.

A rule decides a `Change` (fields to set and append, the events it causes) from the case
as it is; `next_state` turns it into the whole next snapshot, one version on, with its
history entry and the action's id kept on the case, so that a retried request or a
redelivered event has no second effect and its events have deterministic ids.
`CaseWriter.apply` runs the rule on the head of the case's revision log
(`tiaojie.runtime.revisions`): exactly one writer wins each version; a loser decides again
on the newer state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any

from tiaojie.contracts import topics
from tiaojie.contracts.common import CaseStatus
from tiaojie.contracts.envelope import CloudEvent, EventData, derived_id, new_event
from tiaojie.contracts.intake import CaseEvent
from tiaojie.intake.classifier import Classifier
from tiaojie.intake.metrics import IntakeMetrics
from tiaojie.intake.models import CaseDoc, HistoryEntry
from tiaojie.intake.repository import IntakeRepository, Scope
from tiaojie.intake.risk import RiskPolicy
from tiaojie.intake.settings import IntakeSettings
from tiaojie.runtime.clock import Clock
from tiaojie.runtime.divisions import Divisions
from tiaojie.runtime.errors import Conflict, NotFound
from tiaojie.runtime.mongo import Document
from tiaojie.runtime.pii import Protector
from tiaojie.runtime.revisions import Change as Revision
from tiaojie.runtime.revisions import Contention

SOURCE = topics.service_source("intake")
SYSTEM = "system:intake"

Events = list[tuple[str, CloudEvent]]
# A decision on a case as it is: its next state and events, or None for nothing to do.
Decision = Callable[[CaseDoc], Awaitable["tuple[CaseDoc, Events] | None"]]


@dataclass
class Change:
    """What one action does to a case: fields to set and append, and its events."""

    status: CaseStatus
    note: str = ""
    sets: dict[str, Any] = field(default_factory=dict)
    push: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[type[CaseEvent], dict[str, Any]]] = field(default_factory=list)
    # Events that are not lifecycle events of intake.cases.v1: built from the case after
    # the change, with the id the event must have.
    others: list[tuple[str, Callable[[CaseDoc], EventData], str]] = field(default_factory=list)


@dataclass(frozen=True)
class Applied:
    case: CaseDoc
    fresh: bool  # False when the action had been applied before (a retry or redelivery)


Build = Callable[[CaseDoc, datetime], Change | None]


@dataclass(frozen=True)
class Action:
    """One action on a case: its name (history, metrics), id, author and rule."""

    action: str
    action_id: str
    by: str
    build: Build


def next_state(case: CaseDoc, change: Change, *, entries: list[HistoryEntry], action_id: str) -> CaseDoc:
    """The case after a change (a whole new snapshot, one version on)."""
    data = case.model_dump(by_alias=True)
    data.update(change.sets)
    for name, item in change.push.items():
        data[name] = [*data.get(name, []), item]
    data["status"] = change.status
    data["history"] = [*data["history"], *(e.model_dump() for e in entries)]
    data["applied"] = [*data["applied"], action_id]
    data["version"] = case.version + 1
    return CaseDoc.model_validate(data)


def case_event(
    cls: type[CaseEvent],
    case: CaseDoc,
    *,
    at: datetime,
    by: str,
    action_id: str,
    fields: dict[str, Any],
) -> CloudEvent:
    """A lifecycle event of a case, with the id its action determines."""
    payload = cls(
        case_id=case.id,
        county=case.county,
        township=case.township,
        category=case.category,
        organisation_id=case.organisation_id,
        status=fields.pop("status", case.status),
        at=at,
        by=by,
        referral_id=case.referral_id,
        **fields,
    )
    return new_event(
        payload,
        source=SOURCE,
        subject=case.id,
        county=case.county,
        id=derived_id(f"{case.id}:{action_id}", cls.event_type),
        time=at,
    )


def events_of(change: Change, after: CaseDoc, *, at: datetime, by: str, action_id: str) -> Events:
    """The events a change causes, built from the case after it."""
    events: Events = [
        (topics.CASES, case_event(cls, after, at=at, by=by, action_id=action_id, fields=dict(fields)))
        for cls, fields in change.events
    ]
    for topic, make, name in change.others:
        events.append(
            (
                topic,
                new_event(
                    make(after),
                    source=SOURCE,
                    subject=after.id,
                    county=after.county,
                    id=derived_id(f"{after.id}:{action_id}", name),
                    time=at,
                ),
            )
        )
    return events


class CaseWriter:
    """Applies decisions to cases through the storage engine."""

    def __init__(self, *, repository: IntakeRepository, clock: Clock, metrics: IntakeMetrics) -> None:
        self.repo = repository
        self.clock = clock
        self.metrics = metrics

    async def create(self, case: CaseDoc, events: Events) -> bool:
        """Store a new case (version 1) with its events; False if that id exists already."""
        return await self.repo.store.create(case.to_mongo(), events)

    async def create_many(self, cases: Sequence[tuple[CaseDoc, Events]]) -> list[bool]:
        """Store many new cases with one claim command; False where that id existed."""
        if not cases:
            return []
        return await self.repo.store.create_many(
            [Revision(case.to_mongo(), events) for case, events in cases]
        )

    async def decide(self, case_id: str, decision: Decision, *, scope: Scope | None = None) -> Applied:
        """Run a decision on the head of a case; NotFound outside the scope."""

        async def on(raw: Document | None) -> Revision | None:
            if raw is None or (scope is not None and not scope.admits(raw)):
                raise NotFound("案件", "case")
            decided = await decision(CaseDoc.model_validate(raw))
            if decided is None:
                return None
            after, events = decided
            return Revision(after.to_mongo(), events)

        try:
            outcome = await self.repo.store.apply(case_id, on)
        except Contention:
            raise Conflict(
                "案件正被同时修改，请稍后重试", "the case is being changed concurrently; retry"
            ) from None
        assert outcome.after is not None  # a missing case raised NotFound
        return Applied(CaseDoc.model_validate(outcome.after), fresh=outcome.fresh)

    async def apply_many(self, actions: Mapping[str, Action]) -> dict[str, Applied]:
        """`apply` for one action on each of many cases, claimed together; a case this
        service does not hold is left out of the result (a decision about it is ignored)."""

        def on(action: Action) -> Callable[[Document | None], Awaitable[Revision | None]]:
            async def decide(raw: Document | None) -> Revision | None:
                if raw is None:
                    return None
                decided = self._decided(CaseDoc.model_validate(raw), action)
                return None if decided is None else Revision(decided[0].to_mongo(), decided[1])

            return decide

        try:
            outcomes = await self.repo.store.apply_many({case_id: on(a) for case_id, a in actions.items()})
        except Contention:
            raise Conflict(
                "案件正被同时修改，请稍后重试", "the case is being changed concurrently; retry"
            ) from None
        applied: dict[str, Applied] = {}
        for case_id, outcome in outcomes.items():
            if outcome.after is None:
                continue
            applied[case_id] = done = Applied(CaseDoc.model_validate(outcome.after), fresh=outcome.fresh)
            if done.fresh:
                self.metrics.transitions.labels(actions[case_id].action, done.case.county).inc()
        return applied

    def _decided(self, case: CaseDoc, action: Action) -> tuple[CaseDoc, Events] | None:
        if action.action_id in case.applied:
            return None
        now = self.clock.now()
        change = action.build(case, now)
        if change is None:
            return None
        entry = HistoryEntry(
            at=now, action=action.action, by=action.by, status=change.status, note=change.note
        )
        after = next_state(case, change, entries=[entry], action_id=action.action_id)
        return after, events_of(change, after, at=now, by=action.by, action_id=action.action_id)

    async def apply(
        self,
        case_id: str,
        *,
        action: str,
        action_id: str,
        by: str,
        build: Build,
        scope: Scope | None = None,
    ) -> Applied:
        """Read, decide, commit, publish: an action with its history entry, applied once."""

        one = Action(action=action, action_id=action_id, by=by, build=build)

        async def decision(case: CaseDoc) -> tuple[CaseDoc, Events] | None:
            return self._decided(case, one)

        applied = await self.decide(case_id, decision, scope=scope)
        if applied.fresh:
            self.metrics.transitions.labels(action, applied.case.county).inc()
        return applied


class IntakeCore:
    """What every group of intake's rules works with (IntakeService composes the groups)."""

    repo: IntakeRepository
    writer: CaseWriter
    protector: Protector
    divisions: Divisions
    settings: IntakeSettings
    clock: Clock
    metrics: IntakeMetrics
    classifier: Classifier
    tz: tzinfo
    risk_policy: RiskPolicy

    def today(self) -> date:
        return self.clock.now().astimezone(self.tz).date()

    async def _apply(
        self,
        case_id: str,
        *,
        action: str,
        action_id: str,
        by: str,
        build: Build,
        scope: Scope | None = None,
    ) -> Applied:
        return await self.writer.apply(
            case_id, action=action, action_id=action_id, by=by, build=build, scope=scope
        )
