"""The storage engine: aggregates whose every change is claimed by a unique insert.

FerretDB 1.24 applies no compare-and-set but one: an insert against a unique index
(measured: concurrent `$inc` on one document lose updates, concurrent `findAndModify`
hand out duplicates, version-guarded updates report more winners than versions). So
every change of an aggregate (a case, a referral, a projection, a mediator) is claimed by
inserting its revision `<id>#<version>` into the aggregate's revision log; exactly one
writer wins each version. The revision carries the whole new state and the events the
change causes (the outbox, in the same document: no transactions needed).

After a won claim the writer (1) writes the state into the snapshot collection, which
never moves back to an older version, (2) publishes the outbox and waits for the
broker's acknowledgements, (3) settles the revision: `applied`, outbox emptied, and the
state of the revision before it dropped (the head always keeps its state, so a snapshot
can always be rolled forward to it).

A writer that loses a claim walks the log forward from the version it lost to the head,
brings the snapshot there and decides again on the head. A crash between claim and
snapshot (or before publishing) leaves an unsettled revision: the next writer of that
aggregate rolls it forward, and `sweep` (run periodically from every replica) does so for
aggregates nobody writes, publishing their outboxes. Events have stable ids, so a
publication repeated by a sweep racing a slow writer is a duplicate consumers drop.

Batches: `apply_many` loads the aggregates of a batch concurrently (FerretDB does not
push `$in` down: a batch read by `_id` list is a scan), decides each in memory, claims all
with one unordered `insert_many`, writes the snapshots concurrently, publishes every
event together and settles in one bulk write; a lost claim falls back to `apply` for that
aggregate alone.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from tiaojie.contracts.envelope import CloudEvent
from tiaojie.runtime.kafka import EventPublisher
from tiaojie.runtime.logging import get_logger
from tiaojie.runtime.mongo import (
    BULK_CHUNK,
    OUTBOX,
    OUTBOX_PENDING,
    Document,
    bulk_write_chunked,
    outbox_fields,
)
from tiaojie.runtime.settings import RuntimeSettings

log = get_logger(__name__)

# insert_many of a batch's claims: FerretDB inserts them in one transaction per command,
# about a tenth of the cost per document of single inserts; bounded so one command stays small.
CLAIM_CHUNK = 100
_DUPLICATE = 11000
# How long a writer that lost a claim waits for the winner to settle before it publishes the
# winner's events itself (a winner settles within milliseconds unless it crashed).
WRITER_PATIENCE = 1.0


class Contention(Exception):
    """An aggregate kept changing under a writer for all of its attempts."""


@dataclass(frozen=True)
class Change:
    """A decided change: the aggregate's whole next state and the events it causes."""

    state: Document
    events: Sequence[tuple[str, CloudEvent]] = ()


@dataclass(frozen=True)
class Outcome:
    """What `apply` did: the state before, the state after, and whether it wrote."""

    before: Document | None
    after: Document | None
    fresh: bool


Decide = Callable[[Document | None], "Change | Awaitable[Change | None] | None"]


@dataclass
class _Claim:
    id: str
    version: int
    revision_id: str
    state: Document
    outbox: Document
    won: bool = False


@dataclass
class Revisions:
    """One kind of aggregate: `docs` holds each one's snapshot, `log` its claimed revisions."""

    db: AsyncDatabase[Document]
    collection: str
    publisher: EventPublisher | None = None
    settings: RuntimeSettings | None = None
    log_collection: str | None = None
    version_field: str = "version"
    attempts: int = 50
    docs: AsyncCollection[Document] = field(init=False)
    log: AsyncCollection[Document] = field(init=False)

    def __post_init__(self) -> None:
        self.docs = self.db[self.collection]
        self.log = self.db[self.log_collection or f"{self.collection}_revisions"]

    @property
    def indexes(self) -> dict[str, list[IndexModel]]:
        """The revision log's indexes (the repository creates them with its own)."""
        return {self.log.name: [IndexModel([("applied", ASCENDING)])]}

    @staticmethod
    def revision_id(of: str, version: int) -> str:
        return f"{of}#{version:09d}"

    def version_of(self, state: Mapping[str, Any] | None) -> int:
        return int(state.get(self.version_field, 0)) if state else 0

    # -- reads --------------------------------------------------------------------
    async def get(self, id: str) -> Document | None:
        """The snapshot (the head, or behind it only after a crash or a lost race)."""
        return await self.docs.find_one({"_id": id})

    async def get_many(self, ids: Sequence[str]) -> dict[str, Document]:
        """Snapshots by id, read concurrently (one `$in` would be a scan on FerretDB)."""
        found = await asyncio.gather(*(self.get(i) for i in ids))
        return {doc["_id"]: doc for doc in found if doc is not None}

    async def head(self, id: str, *, from_version: int = 1) -> Document | None:
        """The latest state: walk the log forward from `from_version`, and bring the snapshot there."""
        state: Document | None = None
        version = max(from_version, 1)
        while True:
            revision = await self.log.find_one({"_id": self.revision_id(id, version)})
            if revision is None:
                break
            if revision.get("state") is not None:
                state = revision["state"]
                await self._write_snapshot(state)
            if not revision.get("applied") and not await self._settled_by_writer(revision["_id"]):
                # Its writer seems to have crashed: its events go out before anything decided
                # on top of it (if it was only slow, it publishes them too: stable event ids).
                await self._publish([revision.get(OUTBOX) or {}])
                await self._settle([(id, version)])
            version += 1
        if state is None:  # nothing at or after from_version kept its state: the snapshot is the head
            return await self.get(id)
        return state

    # -- writes -------------------------------------------------------------------
    async def apply(self, id: str, decide: Decide, *, verify_noop: bool = False) -> Outcome:
        """Read, decide, claim, publish; decided again on the head after a lost claim.

        `decide` gets the current state (None for a new aggregate) and returns the next
        state with its events, or None when there is nothing to do. With `verify_noop`, a
        None decided on a snapshot that might lag is confirmed on the head first (for
        rules whose no-op depends on the latest state, not only on what is already applied).
        """
        state = await self.get(id)
        at_head = False
        for attempt in range(self.attempts):
            change = await _decided(decide, state)
            if change is None:
                if verify_noop and not at_head:
                    state, at_head = await self.head(id, from_version=self.version_of(state) + 1), True
                    continue
                return Outcome(state, state, fresh=False)
            claim = self._claim_of(id, change, after=state)
            await self._insert_claims([claim])
            if claim.won:
                await self._after_claims([claim])
                return Outcome(state, claim.state, fresh=True)
            state, at_head = await self.head(id, from_version=claim.version), True
            if attempt:
                await asyncio.sleep(0.002 * attempt)
        raise Contention(f"{self.collection} {id} kept changing")

    async def apply_many(
        self,
        decisions: Mapping[str, Decide],
        *,
        verify_noop: bool = False,
        known: Mapping[str, Document | None] | None = None,
    ) -> dict[str, Outcome]:
        """`apply` for many aggregates at once (distinct ids): one claim command, one
        round of publications and one settle for the batch; lost claims redone one by one.

        `known` holds states the caller has just read (None: known not to exist), which are
        not read again. A stale one costs nothing but a lost claim, decided again on the head."""
        known = {id: state for id, state in (known or {}).items() if id in decisions}
        if len(decisions) == 1 and not known:
            ((only, decide),) = decisions.items()
            return {only: await self.apply(only, decide, verify_noop=verify_noop)}
        read = await self.get_many([id for id in decisions if id not in known])
        states = {**{id: state for id, state in known.items() if state is not None}, **read}
        outcomes: dict[str, Outcome] = {}
        claims: list[_Claim] = []
        retry: list[str] = []
        for id, decide in decisions.items():
            before = states.get(id)
            change = await _decided(decide, before)
            if change is None:
                if verify_noop:
                    retry.append(id)
                else:
                    outcomes[id] = Outcome(before, before, fresh=False)
                continue
            claims.append(self._claim_of(id, change, after=before))
        await self._insert_claims(claims)
        won = [c for c in claims if c.won]
        await self._after_claims(won)
        for claim in won:
            outcomes[claim.id] = Outcome(states.get(claim.id), claim.state, fresh=True)
        retry.extend(c.id for c in claims if not c.won)
        for id in retry:
            outcomes[id] = await self.apply(id, decisions[id], verify_noop=verify_noop)
        return outcomes

    async def create(self, state: Document, events: Sequence[tuple[str, CloudEvent]] = ()) -> bool:
        """Claim version 1 of a new aggregate; False if it exists already (its snapshot is rolled forward)."""
        claim = self._claim_of(state["_id"], Change({**state, self.version_field: 1}, events), after=None)
        await self._insert_claims([claim])
        if claim.won:
            await self._after_claims([claim])
        else:
            await self.head(claim.id, from_version=1)
        return claim.won

    async def create_many(self, changes: Sequence[Change]) -> list[bool]:
        """`create` for many new aggregates (distinct ids): one claim command, one round of
        publications, one settle; False where the aggregate existed (rolled forward)."""
        claims = [
            self._claim_of(c.state["_id"], Change({**c.state, self.version_field: 1}, c.events), after=None)
            for c in changes
        ]
        await self._insert_claims(claims)
        await self._after_claims([c for c in claims if c.won])
        for claim in claims:
            if not claim.won:
                await self.head(claim.id, from_version=1)
        return [c.won for c in claims]

    def _claim_of(self, id: str, change: Change, *, after: Document | None) -> _Claim:
        version = self.version_of(after) + 1
        state = {**change.state, "_id": id, self.version_field: version}
        return _Claim(
            id=id,
            version=version,
            revision_id=self.revision_id(id, version),
            state=state,
            outbox=outbox_fields(list(change.events)),
        )

    async def _insert_claims(self, claims: Sequence[_Claim]) -> None:
        """Insert the claims' revisions; mark each one won or lost."""
        now = datetime.now(UTC)
        for start in range(0, len(claims), CLAIM_CHUNK):
            chunk = claims[start : start + CLAIM_CHUNK]
            docs = [
                {
                    "_id": c.revision_id,
                    "of": c.id,
                    "version": c.version,
                    "state": c.state,
                    "applied": False,
                    "at": now,
                    **c.outbox,
                }
                for c in chunk
            ]
            lost: set[int] = set()
            try:
                if len(docs) == 1:
                    await self.log.insert_one(docs[0])
                else:
                    await self.log.insert_many(docs, ordered=False)
            except DuplicateKeyError:
                lost = {0}
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if any(e.get("code") != _DUPLICATE for e in errors):
                    raise
                lost = {int(e["index"]) for e in errors}
            for n, claim in enumerate(chunk):
                claim.won = n not in lost

    async def _after_claims(self, claims: Sequence[_Claim]) -> None:
        """Snapshots, publications, settlement of won claims."""
        if not claims:
            return
        await asyncio.gather(*(self._write_snapshot(c.state) for c in claims))
        await self._publish([c.outbox.get(OUTBOX) or {} for c in claims])
        await self._settle([(c.id, c.version) for c in claims])

    async def _write_snapshot(self, state: Document) -> None:
        vf = self.version_field
        try:
            # Never back to an older version: a slow writer's snapshot loses to a newer one.
            # A document stored before the engine, without a version, counts as version 0.
            older = {"$or": [{vf: {"$lt": self.version_of(state)}}, {vf: {"$exists": False}}]}
            await self.docs.replace_one({"_id": state["_id"], **older}, state, upsert=True)
        except DuplicateKeyError:
            pass  # at this version or newer already

    async def _publish(self, outboxes: Sequence[Mapping[str, Document]]) -> None:
        entries = [entry for outbox in outboxes for entry in outbox.values()]
        if not entries:
            return
        if self.publisher is None or self.settings is None:
            raise RuntimeError(f"{self.collection}: events to publish but no publisher")
        publisher, settings = self.publisher, self.settings
        await asyncio.gather(
            *(
                publisher.publish_raw(settings.topic(e["topic"]), e["value"].encode(), key=e["key"])
                for e in entries
            )
        )

    async def _settle(self, written: Sequence[tuple[str, int]]) -> None:
        ops: list[Any] = []
        for id, version in written:
            ops.append(
                UpdateOne(
                    {"_id": self.revision_id(id, version)},
                    {"$set": {"applied": True, OUTBOX_PENDING: False}, "$unset": {OUTBOX: ""}},
                )
            )
            if version > 1:  # the head keeps its state; the one before it no longer needs it
                ops.append(UpdateOne({"_id": self.revision_id(id, version - 1)}, {"$unset": {"state": ""}}))
        await bulk_write_chunked(self.log, ops)

    async def _settled_by_writer(self, revision_id: str) -> bool:
        """Wait a little for a live writer to settle its revision (its publications take
        milliseconds); False if it did not, so the caller takes over."""
        waited = 0.0
        delay = 0.005
        while waited < WRITER_PATIENCE:
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.1)
            doc = await self.log.find_one({"_id": revision_id}, {"applied": 1})
            if doc is None or doc.get("applied"):
                return True
        return False

    # -- recovery -----------------------------------------------------------------
    async def unsettled(self, *, older_than: timedelta, limit: int = 500) -> list[Document]:
        """Revisions a crashed or slow writer left unsettled for longer than `older_than`."""
        settled = datetime.now(UTC) - older_than
        return await self.log.find({"applied": False, "at": {"$lt": settled}}).sort("_id", 1).to_list(limit)

    async def sweep(self, *, older_than: timedelta | None = None) -> int:
        """Roll forward and publish what crashed writers left behind; returns revisions settled."""
        grace = older_than if older_than is not None else timedelta(seconds=self._grace())
        revisions = await self.unsettled(older_than=grace)
        stuck: set[str] = set()
        settled = 0
        for revision in revisions:  # in version order per aggregate (sorted by _id)
            of = str(revision["of"])
            if of in stuck:
                continue  # its later revisions wait: an aggregate's events stay in order
            try:
                if revision.get("state") is not None:
                    await self._write_snapshot(revision["state"])
                await self._publish([revision.get(OUTBOX) or {}])
                await self._settle([(of, int(revision["version"]))])
                settled += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # One revision that cannot be published (a refused topic, an event over the
                # broker's limit) must not hold back every other aggregate's: skipped,
                # counted, and tried again at the next sweep.
                stuck.add(of)
                log.warning(
                    "revision skipped by the sweep",
                    collection=self.collection,
                    revision=revision["_id"],
                    error=type(exc).__name__,
                )
                if self.publisher is not None:
                    self.publisher.count_skipped(self.collection)
        if settled:
            log.info("revisions rolled forward", collection=self.collection, count=settled)
        return settled

    def _grace(self) -> float:
        return self.settings.outbox_grace if self.settings is not None else 5.0

    async def published(self, id: str, version: int) -> bool:
        """True once revision `version` of `id` is settled (its events acknowledged)."""
        doc = await self.log.find_one({"_id": self.revision_id(id, version)}, {"applied": 1})
        return bool(doc and doc.get("applied"))


async def _decided(decide: Decide, state: Document | None) -> Change | None:
    result = decide(state)
    if inspect.isawaitable(result):
        result = await result
    return result


__all__ = ["BULK_CHUNK", "Change", "Contention", "Decide", "Outcome", "Revisions"]
