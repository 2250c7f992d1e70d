"""Timers: 催办 reminders and overdue escalations, each fired once across replicas and
restarts.

A referral or transfer keeps its timers in its own state, and its `timer_day` (see
subjects.py): the sweep of every replica looks up the subjects of each day from its
cursor (the earliest day that may still hold a timer not yet fired, shared by the
replicas) to today, fires everything due of a subject in one change of that subject,
claimed like any other (so of two replicas sweeping together exactly one fires it), and
moves the cursor to the first day that still holds a timer not yet due.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tiaojie.referral import lifecycle
from tiaojie.referral.core import ReferralCore, kind_label
from tiaojie.referral.deadlines import OVERDUE
from tiaojie.referral.lifecycle import Effect
from tiaojie.referral.models import Subject, Timer
from tiaojie.referral.subjects import Applied, SubjectStore, Transition, timer_day
from tiaojie.runtime.logging import get_logger
from tiaojie.runtime.mongo import Document, sweep_forever

log = get_logger(__name__)

# Timers indexed late near midnight (a change decided just before it, stored just after)
# land on a day the cursor has passed: the sweep looks this many days further back.
_LOOK_BACK = timedelta(days=2)
# Subjects fired in one round of the engine (one claim command, one round of publications).
_BATCH = 200


def due_keys(doc: Subject, now: datetime) -> list[str]:
    """The subject's pending timers that are due, earliest first."""
    due = [(t.at, k) for k, t in doc.timers.items() if t.state == "pending" and t.at <= now]
    return [k for _, k in sorted(due)]


def fire_due(doc: Subject, *, now: datetime, escalate_to: list[str]) -> list[Effect] | None:
    """Fire every due timer of a subject (None if none is due: fired elsewhere, or cancelled)."""
    effects: list[Effect] = []
    for key in due_keys(doc, now):
        effects += lifecycle.fire(doc, key, now=now, escalate_to=escalate_to) or []
    return effects or None


def fired_between(before: Subject | None, after: Subject) -> list[Timer]:
    """The timers a change fired (pending before it, fired after it)."""
    was = before.timers if before else {}
    return [
        t for k, t in after.timers.items() if t.state == "fired" and k in was and was[k].state == "pending"
    ]


def reindexed(doc: Subject, now: datetime) -> list[Effect] | None:
    """A change with no events that only brings `timer_day` up to date (None if it is)."""
    return None if doc.timer_day == timer_day(doc, now) else []


def overdue_gauge(rows: list[Document]) -> dict[tuple[str, str], int]:
    """The overdue gauge's values by (county, agency kind) from the database's counts."""
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        labels = (row["_id"]["county"], kind_label(row["_id"].get("agency_kind")))
        counts[labels] = counts.get(labels, 0) + int(row["n"])
    return counts


class TimerRules(ReferralCore):
    """The timer sweep, the overdue gauge and the timer loop."""

    _legacy_adopted: bool = False

    async def sweep(self) -> int:
        """Fire every due timer (each exactly once across replicas); returns how many fired here."""
        now = self.clock.now()
        today = now.astimezone(UTC).date()
        cursor = await self.repo.sweep_cursor() or today
        day = min(cursor, today) - _LOOK_BACK
        fired = 0
        leftover: date | None = None
        stores: tuple[SubjectStore[Any], ...] = (self.referrals, self.transfers)
        while day <= today:
            for store in stores:
                found = await store.on_timer_day(day)
                due = [s for s in found if due_keys(s, now)]
                complete = len(due) == len(found)
                for start in range(0, len(due), _BATCH):
                    count, all_fired = await self._fire(store, due[start : start + _BATCH], now)
                    fired += count
                    complete = complete and all_fired
                if not complete:
                    leftover = leftover or day
            day += timedelta(days=1)
        await self.repo.set_sweep_cursor(leftover or today)
        return fired

    async def _fire(self, store: SubjectStore[Any], due: list[Subject], now: datetime) -> tuple[int, bool]:
        """Fire the due timers of a day's subjects together; (timers fired, all could fire)."""
        overdue = [d for d in due if any(k.endswith(OVERDUE) for k in due_keys(d, now))]
        targets = await self.hierarchy.escalations(overdue)
        rules = {d.id: self._firing(now, targets.get(d.id, [])) for d in due}
        applied, complete = await self._apply_each(store, rules, now)
        fired = 0
        for one in applied:
            if not one.fresh:
                continue
            for timer in fired_between(one.before, one.doc):
                fired += 1
                self.metrics.timers_fired.labels(timer.action).inc()
                if timer.action == OVERDUE:
                    self.metrics.escalations.labels(one.doc.county, f"overdue_{timer.stage}").inc()
        return fired, complete

    @staticmethod
    def _firing(now: datetime, escalate_to: list[str]) -> Transition[Any]:
        return lambda doc: fire_due(doc, now=now, escalate_to=escalate_to)

    async def _apply_each(
        self, store: SubjectStore[Any], rules: Mapping[str, Transition[Any]], now: datetime
    ) -> tuple[list[Applied[Any]], bool]:
        """All in one round; if that fails, one by one, so that one subject that cannot fire
        now does not hold up the others (it stays due, and is tried at the next sweep)."""
        try:
            return await store.apply_many(rules, now=now), True
        except Exception as exc:
            log.warning("timers failed together", subject_kind=store.kind, error=type(exc).__name__)
        applied: list[Applied[Any]] = []
        complete = True
        for subject_id, rule in rules.items():
            try:
                one = await store.apply_existing(subject_id, rule, now=now)
            except Exception as exc:
                log.warning("timer failed", subject_kind=store.kind, error=type(exc).__name__)
                complete = False
                continue
            if one is not None:
                applied.append(one)
        return applied, complete

    async def refresh_overdue(self) -> None:
        """Recompute the overdue gauge from the database."""
        self.metrics.set_overdue(overdue_gauge(await self.repo.overdue_counts()))

    async def adopt_legacy_timers(self) -> int:
        """Reindex the subjects the old `timers` collection still holds, then drop it; returns how many."""
        now = self.clock.now()

        def reindex(doc: Subject) -> list[Effect] | None:
            return reindexed(doc, now)

        adopted = 0
        while subjects := await self.repo.legacy_timer_subjects():
            for kind, subject_id in subjects:
                store: SubjectStore[Any] = self.referrals if kind == "referral" else self.transfers
                await store.apply_existing(subject_id, reindex, now=now)
                await self.repo.drop_legacy_timers(kind=kind, subject_id=subject_id)
                adopted += 1
        if adopted:
            log.info("legacy timers adopted", subjects=adopted)
        return adopted

    async def tick(self) -> None:
        """One round of the timer loop: adopt the old index once, fire, refresh the gauge."""
        if not self._legacy_adopted:
            await self.adopt_legacy_timers()
            self._legacy_adopted = True
        await self.sweep()
        await self.refresh_overdue()

    async def run_timers(self) -> None:
        """The timer loop of one replica (cancelled at shutdown)."""
        await sweep_forever(self.tick, self.settings.timer_interval, what="timer sweep")
