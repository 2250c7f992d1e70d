"""The only module that touches the library's collections; it creates their indexes.

Reads by a person are scoped here: an unpublished entry of another county is
indistinguishable from a missing one. Every query is an equality on an indexed field
(FerretDB pushes only those down, DESIGN.md §5).

Entries and open cases change only through the storage engine (`tiaojie.runtime.revisions`):
FerretDB 1.24 honours no version-guarded update (several writers can win one version), and
a revision claimed by a unique insert is the one change it applies atomically. An entry's
revision carries the events it causes (library.entries.v1), published by the engine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from tiaojie.contracts.library import EntryStatus
from tiaojie.library.models import EntryDoc, OpenCase
from tiaojie.runtime.kafka import EventPublisher
from tiaojie.runtime.mongo import OUTBOX_PENDING, Document, ensure_indexes
from tiaojie.runtime.revisions import Revisions
from tiaojie.runtime.settings import RuntimeSettings

INDEXES = {
    "entries": [
        IndexModel([("case_id", ASCENDING)], unique=True),
        IndexModel([("status", ASCENDING)]),
        IndexModel([("county", ASCENDING)]),
        # Entries written before the engine with events still in their own outbox: found
        # once per start and handed to the engine (see LibraryService.adopt_legacy_outboxes).
        IndexModel([(OUTBOX_PENDING, ASCENDING)]),
    ],
    "open_cases": [IndexModel([("county", ASCENDING)])],
}

# What the index needs of a published entry: its tags, title, summary (for the snippet)
# and terms; not the other texts, the history or the outbox (reading less makes a start-up
# of a large library markedly faster on FerretDB).
_INDEX_PROJECTION = {
    name: 0
    for name in (
        "history",
        "outbox",
        "name_keys",
        "nominations",
        "anonymised",
        "process",
        "result",
        "commentary",
        "follow_up",
        "note",
    )
}


class LibraryRepository:
    def __init__(
        self,
        db: AsyncDatabase[Document],
        *,
        publisher: EventPublisher | None = None,
        settings: RuntimeSettings | None = None,
    ) -> None:
        self.db = db
        # `entries` holds the snapshots, `entries_revisions` the claimed revisions (with outboxes).
        self.entry_store = Revisions(db, "entries", publisher=publisher, settings=settings)
        # What the library knows of open cases publishes nothing.
        self.open_case_store = Revisions(db, "open_cases", settings=settings)
        self.entries = self.entry_store.docs
        self.open_cases = self.open_case_store.docs

    async def create_indexes(self) -> None:
        await ensure_indexes(self.db, {**INDEXES, **self.entry_store.indexes, **self.open_case_store.indexes})

    async def sweep(self) -> int:
        """Roll forward (and publish) what crashed writers left unsettled."""
        return await self.entry_store.sweep() + await self.open_case_store.sweep()

    # -- entries ------------------------------------------------------------------------
    async def legacy_outbox_ids(self) -> list[str]:
        """Entries whose own outbox (written before the engine) still holds events."""
        return [d["_id"] async for d in self.entries.find({OUTBOX_PENDING: True}, {"_id": 1})]

    async def get_entry_raw(self, entry_id: str) -> Document | None:
        return await self.entries.find_one({"_id": entry_id})

    async def get_entry(self, entry_id: str) -> EntryDoc | None:
        """An entry regardless of county (for rules and event handling only)."""
        doc = await self.entries.find_one({"_id": entry_id})
        return EntryDoc.model_validate(doc) if doc else None

    async def get_visible_entry(
        self, entry_id: str, *, counties: Sequence[str], subject: str, all_in_county: bool
    ) -> EntryDoc | None:
        """A published entry, or an unpublished one of the caller's counties (all of them for
        curators, only their own nominations otherwise); None for anything else."""
        doc = await self.entries.find_one({"_id": entry_id})
        if doc is None:
            return None
        entry = EntryDoc.model_validate(doc)
        if entry.status == EntryStatus.PUBLISHED:
            return entry
        if entry.county not in set(counties):
            return None
        if not all_in_county and entry.nominated_by != subject:
            return None
        return entry

    async def list_entries(
        self,
        *,
        counties: Sequence[str],
        status: EntryStatus | None,
        subject: str,
        all_in_county: bool,
        limit: int,
    ) -> list[EntryDoc]:
        """Entries of these counties (equality per county), newest nomination first."""
        found: list[EntryDoc] = []
        for county in dict.fromkeys(counties):
            query: Document = {"county": county}
            if status is not None:
                query["status"] = str(status)
            if not all_in_county:
                query["nominated_by"] = subject
            async for doc in self.entries.find(query, {"history": 0, "outbox": 0}):
                found.append(EntryDoc.model_validate(doc))
        found.sort(key=lambda e: e.nominated_at, reverse=True)
        return found[:limit]

    async def published(self) -> AsyncIterator[EntryDoc]:
        """Every published entry as the index needs it (the start-up load): without the
        texts other than the summary, without history; not for display."""
        async for doc in self.entries.find({"status": str(EntryStatus.PUBLISHED)}, _INDEX_PROJECTION):
            yield EntryDoc.model_validate(doc)

    # -- open cases (projection of intake's events) ----------------------------------------
    async def get_open_case(self, case_id: str) -> OpenCase | None:
        doc = await self.open_cases.find_one({"_id": case_id})
        return OpenCase.model_validate(doc) if doc else None
