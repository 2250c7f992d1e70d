"""Referrals and transfers as aggregates of the runtime's storage engine.

A rule of `lifecycle` changes a subject and names the events it causes (`Effect`s);
`change_of` turns that into the engine's `Change`: the whole next snapshot, one version
on, with its timer index (`timer_day`), and its events with ids derived from that
revision, so that a change decided again (after a lost claim) or re-published (after a
crash) carries the same ids. `SubjectStore.apply` runs a rule on the head of the
subject's revision log (`tiaojie.runtime.revisions`): exactly one writer wins each
version; a loser decides again on the newer state, where a redelivered or repeated input
finds itself applied and changes nothing.

The timer index lives in the snapshot itself: the sweep finds subjects by `timer_day`,
which every change recomputes, so no crash can separate a timer from its index.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Generic, TypeVar

from tiaojie.contracts import topics
from tiaojie.contracts.envelope import CloudEvent, EventData, derived_id, new_event
from tiaojie.referral.lifecycle import Effect
from tiaojie.referral.models import Subject
from tiaojie.referral.repository import ReferralRepository
from tiaojie.runtime.clock import Clock
from tiaojie.runtime.errors import Conflict, NotFound
from tiaojie.runtime.mongo import Document
from tiaojie.runtime.revisions import Change, Contention, Decide, Outcome, Revisions

SOURCE = topics.service_source("referral")

S = TypeVar("S", bound=Subject)
# A rule of `lifecycle`: changes the subject it is given and returns the events the change
# causes, or None when there is nothing to do (already applied).
Transition = Callable[[S], list[Effect] | None]


def timer_day(doc: Subject, now: datetime) -> str | None:
    """The UTC day the timer sweep finds the subject under: that of its earliest pending
    timer, but never before `now`'s (a timer already due is looked at today)."""
    today = now.astimezone(UTC).date()
    days = [max(t.at.astimezone(UTC).date(), today) for t in doc.timers.values() if t.state == "pending"]
    return min(days).isoformat() if days else None


def envelope(doc: Subject, index: int, effect: Effect, now: datetime) -> CloudEvent:
    """The event of an effect, with the id of the revision that causes it (doc.version)."""
    data: EventData = effect.data
    return new_event(
        data,
        source=SOURCE,
        subject=effect.key,
        county=doc.county,
        id=derived_id(f"{doc.id}#{doc.version}", f"{index}:{data.event_type}"),
        time=now,
    )


def change_of(doc: Subject, effects: list[Effect], *, now: datetime) -> Change:
    """The engine's change for a subject a rule has changed: one version on, reindexed."""
    doc.version += 1
    doc.timer_day = timer_day(doc, now)
    events = [(e.topic, envelope(doc, i, e, now)) for i, e in enumerate(effects)]
    return Change(doc.to_mongo(), events)


def decision(
    model: type[S],
    transition: Transition[S],
    *,
    now: datetime,
    noun: tuple[str, str],
    visible: Callable[[S], bool] | None = None,
    missing_ok: bool = False,
) -> Callable[[Document | None], Change | None]:
    """The engine's decide function for a rule: pure in the state it is given.

    A missing subject (or one `visible` hides from the caller) is NotFound, or nothing
    to do with `missing_ok` (a referral of another deployment)."""

    def decide(state: Document | None) -> Change | None:
        if state is None:
            if missing_ok:
                return None
            raise NotFound(*noun)
        doc = model.model_validate(state)
        if visible is not None and not visible(doc):
            raise NotFound(*noun)
        effects = transition(doc)
        return None if effects is None else change_of(doc, effects, now=now)

    return decide


@dataclass(frozen=True)
class Applied(Generic[S]):
    """What applying a rule did: the subject before and after, and whether it wrote."""

    before: S | None
    doc: S
    fresh: bool


class TimerCursor:
    """Gives the timer sweep its cursor before the first timer is indexed: without one it
    would look back two days only, and miss a timer indexed earlier (after a long stop)."""

    def __init__(self, *, repository: ReferralRepository, clock: Clock) -> None:
        self.repo = repository
        self.clock = clock
        self._known = False

    async def ensure(self) -> None:
        """Create the cursor at today unless it exists (once per process)."""
        if not self._known:
            await self.repo.start_sweep_cursor(self.clock.now().astimezone(UTC).date())
            self._known = True


class SubjectStore(Generic[S]):
    """Referrals or transfers: reads of their snapshots, and rules applied through the engine."""

    def __init__(
        self,
        *,
        repository: ReferralRepository,
        revisions: Revisions,
        model: type[S],
        kind: str,
        noun: tuple[str, str],
        cursor: TimerCursor,
    ) -> None:
        self.repo = repository
        self.revisions = revisions
        self.model = model
        self.kind = kind
        self.noun = noun
        self.cursor = cursor

    async def get(self, subject_id: str) -> S | None:
        """The snapshot (the head but after a crash, until the sweep rolls it forward)."""
        raw = await self.revisions.get(subject_id)
        return self.model.model_validate(raw) if raw else None

    async def get_many(self, ids: list[str]) -> list[S]:
        found = await self.revisions.get_many(ids)
        return [self.model.model_validate(found[i]) for i in ids if i in found]

    async def on_timer_day(self, day: date) -> list[S]:
        """Subjects the timer sweep looks at on `day`."""
        return [self.model.model_validate(d) for d in await self.repo.on_timer_day(self.revisions, day)]

    async def create(self, doc: S, effects: list[Effect], *, now: datetime) -> bool:
        """Store a new subject (version 1) with its events; False if its id exists."""
        await self.cursor.ensure()
        change = change_of(doc, effects, now=now)
        return await self.revisions.create(change.state, change.events)

    async def apply(
        self,
        subject_id: str,
        transition: Transition[S],
        *,
        now: datetime,
        visible: Callable[[S], bool] | None = None,
        verify_noop: bool = False,
    ) -> Applied[S]:
        """Apply a rule to the head of a subject; NotFound if it does not exist (or is hidden)."""
        decide = decision(self.model, transition, now=now, noun=self.noun, visible=visible)
        applied = self._applied(await self._run(subject_id, decide, verify_noop=verify_noop))
        assert applied is not None  # a missing subject raised NotFound
        return applied

    async def apply_existing(
        self, subject_id: str, transition: Transition[S], *, now: datetime, verify_noop: bool = False
    ) -> Applied[S] | None:
        """Apply a rule if the subject exists (None if not: a referral of another deployment)."""
        decide = decision(self.model, transition, now=now, noun=self.noun, missing_ok=True)
        return self._applied(await self._run(subject_id, decide, verify_noop=verify_noop))

    async def apply_many(
        self, transitions: Mapping[str, Transition[S]], *, now: datetime, verify_noop: bool = False
    ) -> list[Applied[S]]:
        """Apply a rule to each of many subjects in one round; missing ones are skipped."""
        if not transitions:
            return []
        await self.cursor.ensure()
        decisions = {
            sid: decision(self.model, t, now=now, noun=self.noun, missing_ok=True)
            for sid, t in transitions.items()
        }
        try:
            outcomes = await self.revisions.apply_many(decisions, verify_noop=verify_noop)
        except Contention:
            raise self._contended() from None
        return [a for o in outcomes.values() if (a := self._applied(o)) is not None]

    async def _run(self, subject_id: str, decide: Decide, *, verify_noop: bool) -> Outcome:
        await self.cursor.ensure()
        try:
            return await self.revisions.apply(subject_id, decide, verify_noop=verify_noop)
        except Contention:
            raise self._contended() from None

    def _applied(self, outcome: Outcome) -> Applied[S] | None:
        if outcome.after is None:
            return None
        before = self.model.model_validate(outcome.before) if outcome.before else None
        return Applied(before, self.model.model_validate(outcome.after), outcome.fresh)

    @staticmethod
    def _contended() -> Conflict:
        return Conflict("操作冲突，请稍后重试", "too many concurrent changes; try again")
