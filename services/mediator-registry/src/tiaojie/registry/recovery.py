"""Crash recovery of the registry's aggregates, and the conversion of data written before
the storage engine.

* `sweep`, from every replica every `TIAOJIE_OUTBOX_RELAY_INTERVAL`: the engine's sweep of
  each kind of aggregate (revisions a crashed writer left unsettled for longer than the
  grace are rolled forward and their events published), then what that writer would have
  done next: record the history entry or the decision, release the reservations the
  change ended.
* `audit`, every `TIAOJIE_LEDGER_AUDIT_SECONDS`: a reservation older than
  `TIAOJIE_LEDGER_AUDIT_GRACE` that its case no longer refers to is released; a plan
  pending for longer than that (its writer gone, e.g. a manual reassignment whose request
  died) is abandoned first. The ledger is read before the case: a reservation is taken
  only after its plan is recorded on the case, so a case whose head refers neither to the
  plan nor to a holder with that token can never refer to it again. A reservation the
  case's snapshot refers to is kept on one read; the others are judged on the head.
* `migrate`, at start, once per database: events still in the outboxes documents carried
  before the engine are published, mediators' ledgers are built from the holders and
  grants of the old case projections, and those projections continue as version 0.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from tiaojie.registry import cases, ledger
from tiaojie.registry.assignment import AssignmentService
from tiaojie.registry.repository import RegistryRepository
from tiaojie.registry.settings import RegistrySettings
from tiaojie.runtime.clock import Clock
from tiaojie.runtime.kafka import EventPublisher
from tiaojie.runtime.logging import get_logger
from tiaojie.runtime.mongo import Document, OutboxRelay, sweep_forever
from tiaojie.runtime.revisions import Revisions

log = get_logger(__name__)

# Cases read at once by the audit (each read is one pooled connection).
AUDIT_CHUNK = 25


class Recovery:
    """What brings the registry's aggregates back to a settled state after a crash."""

    def __init__(
        self,
        *,
        repository: RegistryRepository,
        assignments: AssignmentService,
        publisher: EventPublisher,
        settings: RegistrySettings,
        clock: Clock,
    ) -> None:
        self.repo = repository
        self.assignments = assignments
        self.publisher = publisher
        self.settings = settings
        self.clock = clock

    # -- the engine's sweep and what follows it ----------------------------------------------
    async def sweep(self, *, older_than: timedelta | None = None) -> int:
        """Roll forward what crashed writers left unsettled; the revisions settled."""
        grace = older_than if older_than is not None else timedelta(seconds=self.settings.outbox_grace)
        follow_up: list[tuple[Revisions, Callable[[Document], Awaitable[None]] | None]] = [
            (self.repo.organisation_store, self._record_history),
            (self.repo.mediator_store, self._record_history),
            (self.repo.case_store, self._finish_case),
            (self.repo.load_store, None),
        ]
        settled = 0
        for store, follow in follow_up:
            left = await store.unsettled(older_than=grace) if follow is not None else []
            settled += await store.sweep(older_than=grace)
            for revision in left:
                if follow is not None and revision.get("state"):
                    await follow(revision["state"])
        return settled

    async def _record_history(self, state: Document) -> None:
        if state.get("change"):
            await self.repo.record_history([state["change"]])

    async def _finish_case(self, state: Document) -> None:
        await self.assignments.finish(state=state)

    async def run_sweeps(self) -> None:
        """Sweep at the outbox relay's interval until cancelled."""
        await sweep_forever(self.sweep, self.settings.outbox_relay_interval, what="registry sweep")

    # -- the ledgers' audit ----------------------------------------------------------------------
    async def audit(self, *, older_than: timedelta | None = None) -> int:
        """Release reservations no case refers to any more; the reservations released."""
        grace = older_than if older_than is not None else timedelta(seconds=self.settings.ledger_audit_grace)
        cutoff = self.clock.now() - grace
        held: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for doc in await self.repo.ledgers():
            for entry in ledger.entries(doc):
                if entry["at"] <= cutoff:
                    held[entry["case_id"]].append((str(doc["_id"]), entry["token"]))
        released = 0
        items = sorted(held.items())
        for start in range(0, len(items), AUDIT_CHUNK):
            counts = await asyncio.gather(
                *(self._audit_case(c, refs, cutoff=cutoff) for c, refs in items[start : start + AUDIT_CHUNK])
            )
            released += sum(counts)
        if released:
            log.info("ledger reservations released", count=released)
        return released

    async def _audit_case(self, case_id: str, held: list[tuple[str, str]], *, cutoff: datetime) -> int:
        store = self.repo.case_store
        snapshot = await store.get(case_id)
        stale = [p for p in (snapshot or {}).get("pending") or [] if p["at"] <= cutoff]
        if not stale and all(ref in cases.references(snapshot) for ref in held):
            return 0  # keeping a reservation is always safe: only a release needs the head
        state = await store.head(case_id, from_version=store.version_of(snapshot) + 1)
        for plan in list((state or {}).get("pending") or []):
            if plan["at"] <= cutoff:
                outcome = await store.apply(case_id, cases.abandon(case_id=case_id, token=plan["token"]))
                await self.assignments.settle(outcome=outcome)
                state = outcome.after
        dead = [ref for ref in held if ref not in cases.references(state)]
        await self.assignments.release(refs=dead)
        return len(dead)

    async def run_audits(self) -> None:
        """Audit the ledgers at their interval until cancelled."""
        await sweep_forever(self.audit, self.settings.ledger_audit_seconds, what="ledger audit")

    # -- data written before the storage engine ------------------------------------------------
    async def migrate(self) -> None:
        """Convert a database written before the storage engine (once; idempotent)."""
        if await self.repo.migrated():
            return
        relay = OutboxRelay(
            publisher=self.publisher, settings=self.settings, collections=self.repo.old_outboxes()
        )
        await relay.sweep()
        now = self.clock.now()
        old = await self.repo.unversioned_cases()
        held: dict[str, set[str]] = defaultdict(set)
        for doc in old:
            if doc.get("holder") and not doc.get("closed"):
                held[str(doc["holder"])].add(str(doc["_id"]))
        granted: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for grant in await self.repo.old_grants(since=self.assignments.searcher.window_start(now.date())):
            mediator, day = str(grant["m"]), str(grant["day"])
            case_id = str(grant["_id"])[len(mediator) + 1 : -(len(day) + 1)]
            granted[mediator].add((case_id, day))
        for mediator in sorted(set(held) | set(granted)):
            await self.repo.load_store.apply(
                mediator, ledger.merge_legacy(held=held[mediator], granted=granted[mediator], at=now)
            )
        for doc in old:
            await self.repo.adopt_case(
                str(doc["_id"]), applied=await self.repo.decision_ids_of(str(doc["_id"]))
            )
        await self.repo.drop_old_indexes()
        await self.repo.mark_migrated()
        if old or held or granted:
            log.info("registry data converted", cases=len(old), ledgers=len(set(held) | set(granted)))
