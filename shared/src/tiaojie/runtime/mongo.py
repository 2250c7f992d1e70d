"""MongoDB access: the client factory, index creation, idempotent writes and the outbox.

Written for what both MongoDB and FerretDB 1.24 support (DESIGN.md §5): no transactions,
so a state change and the events it causes are written in one document (the outbox) and
published after the write; lookups are equality filters on indexed fields.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter
from pymongo import AsyncMongoClient, IndexModel, ReturnDocument, monitoring
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from tiaojie.contracts.envelope import CloudEvent
from tiaojie.runtime.kafka import EventPublisher
from tiaojie.runtime.logging import get_logger
from tiaojie.runtime.settings import RuntimeSettings

log = get_logger(__name__)

Document = dict[str, Any]
# FerretDB 1.24 on PostgreSQL runs every operation of a bulk write on its own pooled
# connection until the command ends; keep bulk writes small so a pool never starves.
BULK_CHUNK = 25


class CommandCounter(monitoring.CommandListener):
    """Counts database commands by command and collection (never by document): the
    benchmark reads them to say which collection costs how many round trips."""

    # Commands whose first field names the collection; others are counted as "-".
    _ON_COLLECTION = frozenset(
        {
            "find",
            "insert",
            "update",
            "delete",
            "findAndModify",
            "aggregate",
            "count",
            "distinct",
            "createIndexes",
        }
    )

    def __init__(self, registry: CollectorRegistry) -> None:
        self.commands = Counter(
            "tiaojie_db_commands",
            "Database commands sent, by command and collection",
            ["command", "collection"],
            registry=registry,
        )
        self.failures = Counter(
            "tiaojie_db_command_failures",
            "Database commands that failed, by command",
            ["command"],
            registry=registry,
        )

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        target = event.command.get(name) if name in self._ON_COLLECTION else None
        if name == "getMore":
            target = event.command.get("collection")
        self.commands.labels(name, target if isinstance(target, str) else "-").inc()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self.failures.labels(event.command_name).inc()


def make_client(
    settings: RuntimeSettings, *, app_name: str, registry: CollectorRegistry | None = None
) -> AsyncMongoClient[Document]:
    """An AsyncMongoClient with bounded pool, timezone-aware datetimes and quick failure;
    with a registry, its commands are counted there (tiaojie_db_commands_total)."""
    return AsyncMongoClient(
        settings.mongo_url,
        appname=app_name,
        tz_aware=True,
        maxPoolSize=settings.mongo_pool_size,
        serverSelectionTimeoutMS=5000,
        connectTimeoutMS=5000,
        socketTimeoutMS=30000,
        retryWrites=False,  # FerretDB has no retryable writes; our writes are idempotent.
        event_listeners=[CommandCounter(registry)] if registry is not None else [],
    )


async def ping(client: AsyncMongoClient[Document]) -> bool:
    """True when the database answers a ping."""
    try:
        await client.admin.command("ping")
        return True
    except Exception:
        return False


async def ensure_indexes(db: AsyncDatabase[Document], spec: Mapping[str, Sequence[IndexModel]]) -> None:
    """Create the indexes a repository declares (idempotent).

    One index per command: FerretDB 1.24 panics (and drops the connection) when one
    createIndexes command with several indexes meets a collection that already has them,
    which is every restart; one at a time is idempotent.
    """
    for collection, indexes in spec.items():
        for index in indexes:
            await db[collection].create_indexes([index])


async def bulk_write_chunked(collection: AsyncCollection[Document], ops: Sequence[Any]) -> None:
    """Unordered bulk write in small chunks (see BULK_CHUNK)."""
    for start in range(0, len(ops), BULK_CHUNK):
        await collection.bulk_write(list(ops[start : start + BULK_CHUNK]), ordered=False)


async def insert_once(collection: AsyncCollection[Document], doc: Document) -> bool:
    """Insert a document whose _id is deterministic; False if it was already there."""
    try:
        await collection.insert_one(doc)
        return True
    except DuplicateKeyError:
        return False


async def upsert_one(collection: AsyncCollection[Document], query: Document, update: Document) -> None:
    """Upsert that tolerates a concurrent upsert of the same new document: both miss, both
    insert, the loser hits the unique _id (DuplicateKeyError); its update then applies to
    the winner's document. Without this a harmless race becomes an error (seen: a 500)."""
    try:
        await collection.update_one(query, update, upsert=True)
    except DuplicateKeyError:
        await collection.update_one(query, update, upsert=True)


async def upsert_and_get(
    collection: AsyncCollection[Document], query: Document, update: Document
) -> Document:
    """upsert_one that returns the document as written, in the same round trip."""
    try:
        doc = await collection.find_one_and_update(
            query, update, upsert=True, return_document=ReturnDocument.AFTER
        )
    except DuplicateKeyError:  # as in upsert_one: the loser's update applies to the winner's
        doc = await collection.find_one_and_update(
            query, update, upsert=True, return_document=ReturnDocument.AFTER
        )
    assert doc is not None  # an upsert returning the document after always has one
    return doc


async def upsert_versioned(
    collection: AsyncCollection[Document], *, id: str, version: int, fields: Document
) -> bool:
    """Store a snapshot unless a newer or equal version is stored; True if written."""
    try:
        result = await collection.update_one(
            {"_id": id, "version": {"$lt": version}},
            {"$set": {**fields, "version": version}},
            upsert=True,
        )
    except DuplicateKeyError:
        return False  # the stored version is newer or equal: redelivery or reordering
    return bool(result.upserted_id is not None or result.modified_count)


# -- outbox -------------------------------------------------------------------------

OUTBOX = "outbox"
OUTBOX_PENDING = "outbox_pending"
OUTBOX_REV = "outbox_rev"
OUTBOX_AT = "outbox_at"  # when the pending events were written (wall clock)


def outbox_entry(topic: str, event: CloudEvent) -> Document:
    """An event stored beside a state change, serialised so any payload shape fits."""
    return {"topic": topic, "key": event.subject or event.id, "value": event.to_bytes().decode()}


def outbox_fields(events: Sequence[tuple[str, CloudEvent]]) -> Document:
    """Outbox fields of a document being inserted together with its first events."""
    return {
        OUTBOX: {event.id: outbox_entry(topic, event) for topic, event in events},
        OUTBOX_PENDING: bool(events),
        OUTBOX_REV: 1,
        **({OUTBOX_AT: datetime.now(UTC)} if events else {}),
    }


def outbox_update(events: Sequence[tuple[str, CloudEvent]]) -> tuple[Document, Document]:
    """`$set` and `$inc` parts that add events to a document's outbox in the same write."""
    sets: Document = {f"{OUTBOX}.{event.id}": outbox_entry(topic, event) for topic, event in events}
    if events:
        sets[OUTBOX_PENDING] = True
        sets[OUTBOX_AT] = datetime.now(UTC)
    return sets, ({OUTBOX_REV: 1} if events else {})


class OutboxRelay:
    """Publishes a document's outbox after the write, and re-publishes anything left
    behind by a crash (periodically, from every replica: events have stable ids)."""

    def __init__(
        self,
        *,
        publisher: EventPublisher,
        settings: RuntimeSettings,
        collections: Sequence[AsyncCollection[Document]],
    ) -> None:
        self._publisher = publisher
        self._settings = settings
        self._collections = list(collections)

    async def flush(
        self,
        collection: AsyncCollection[Document],
        doc_id: Any,
        outbox: Mapping[str, Document],
        *,
        rev: int | None = None,
        also_set: Document | None = None,
        also_unset: Sequence[str] = (),
    ) -> None:
        """Publish these outbox entries of one document, then remove them from it.

        With `rev` (the outbox revision the caller's write produced) the pending flag is
        cleared in the same update unless another write added events meanwhile.
        `also_set`/`also_unset` ride on that update (one round trip instead of two) and
        are written even when there is nothing to publish.
        """
        extra_set = dict(also_set or {})
        extra_unset = dict.fromkeys(also_unset, "")
        if not outbox:
            if extra_set or extra_unset:
                await collection.update_one({"_id": doc_id}, _update(extra_set, extra_unset))
            return
        await asyncio.gather(
            *(
                self._publisher.publish_raw(
                    self._settings.topic(entry["topic"]), entry["value"].encode(), key=entry["key"]
                )
                for entry in outbox.values()
            )
        )
        unset = {f"{OUTBOX}.{event_id}": "" for event_id in outbox} | extra_unset
        if rev is not None:
            done = await collection.update_one(
                {"_id": doc_id, OUTBOX_REV: rev}, _update({**extra_set, OUTBOX_PENDING: False}, unset)
            )
            if done.matched_count:
                return
        await collection.update_one({"_id": doc_id}, _update(extra_set, unset))

    async def sweep(self) -> int:
        """Publish every pending outbox; clear the flag where nothing is left."""
        published = 0
        # Pending for longer than the grace only: a younger outbox is being published by its
        # writer right now (flush), and taking it too would publish every event twice.
        settled = datetime.now(UTC) - timedelta(seconds=self._settings.outbox_grace)
        query = {
            OUTBOX_PENDING: True,
            "$or": [{OUTBOX_AT: {"$lt": settled}}, {OUTBOX_AT: {"$exists": False}}],
        }
        for collection in self._collections:
            async for doc in collection.find(query, {OUTBOX: 1, OUTBOX_REV: 1}):
                outbox = doc.get(OUTBOX) or {}
                if outbox:
                    await self.flush(collection, doc["_id"], outbox)
                    published += len(outbox)
                # Only clear the flag if no write added events since we read the document.
                await collection.update_one(
                    {"_id": doc["_id"], OUTBOX_REV: doc.get(OUTBOX_REV, 0), OUTBOX: {}},
                    {"$set": {OUTBOX_PENDING: False}},
                )
        if published:
            log.info("outbox relayed", events=published)
        return published

    async def run_forever(self) -> None:
        """Sweep at the configured interval until cancelled."""
        await sweep_forever(self.sweep, self._settings.outbox_relay_interval, what="outbox sweep")


def _update(sets: Document, unsets: Document) -> Document:
    return {**({"$set": sets} if sets else {}), **({"$unset": unsets} if unsets else {})}


async def sweep_forever(sweep: Callable[[], Awaitable[object]], interval: float, *, what: str) -> None:
    """Run a relay's sweep every `interval` seconds until cancelled; a failed sweep is
    logged (by error class only: no personal data) and tried again next time."""
    while True:
        try:
            await sweep()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(f"{what} failed", error=f"{type(exc).__name__}")
        await asyncio.sleep(interval)


def to_json_safe(value: Any) -> Any:
    """Round-trip through JSON (for storing pydantic dumps with dates as strings)."""
    return orjson.loads(orjson.dumps(value))
