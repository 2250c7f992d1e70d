"""The only module that touches stats' collections; it creates their indexes.

Every hot query is an equality on an indexed top-level field (DESIGN.md §5): cases by
county and by a month they touched (`months`, an array: equality matches an element), by
`open`, by `received_day`; alerts by county; daily counts by `_id` (the day).

Every document that changes (a case or handover projection, an organisation or mediator
snapshot, an alert, the analytics job's lease and state) changes only through the storage
engine (`tiaojie.runtime.revisions`): FerretDB 1.24 applies concurrent updates of one
document non-atomically, and a revision claimed by a unique insert is the one change it
applies atomically. What is written otherwise is written once under a deterministic id
(party index entries, recount marks, detection records) or is a whole value recomputed
from the database (daily counts, forecasts).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from pymongo import ASCENDING, IndexModel, ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from tiaojie.runtime.kafka import EventPublisher
from tiaojie.runtime.mongo import Document, bulk_write_chunked, ensure_indexes, insert_once
from tiaojie.runtime.revisions import Revisions
from tiaojie.runtime.settings import RuntimeSettings

# One insert command carries at most this many new documents (FerretDB inserts them in
# one transaction per command: far cheaper per document than single inserts).
_INSERT_CHUNK = 100
_DUPLICATE = 11000


@dataclass(frozen=True)
class PartyRecord:
    """A case under its party keys (keyed hashes) at one of its revisions."""

    keys: Sequence[str]
    case_id: str
    rev: int
    info: Document


INDEXES = {
    "cases": [
        IndexModel([("county", ASCENDING)]),
        IndexModel([("months", ASCENDING)]),
        IndexModel([("open", ASCENDING)]),
        IndexModel([("received_day", ASCENDING)]),
    ],
    "handovers": [IndexModel([("county", ASCENDING)]), IndexModel([("months", ASCENDING)])],
    "organisations": [IndexModel([("county", ASCENDING)])],
    "mediators": [IndexModel([("county", ASCENDING)])],
    "alerts": [
        IndexModel([("county", ASCENDING)]),
        IndexModel([("status", ASCENDING)]),
    ],
    # One document per (party key, case, case revision), written once: concurrent cases
    # never write one shared document, and the latest revision of a case tells its place.
    "party_cases": [IndexModel([("key", ASCENDING)])],
    # Days whose daily counts must be redone (_id = case id and the revision that moved it).
    "recounts": [],
    "daily_counts": [IndexModel([("month", ASCENDING)])],
    "jobs": [IndexModel([("kind", ASCENDING)])],
    "forecasts": [],
}


class StatsRepository:
    def __init__(
        self,
        db: AsyncDatabase[Document],
        *,
        publisher: EventPublisher | None = None,
        settings: RuntimeSettings | None = None,
    ) -> None:
        self.db = db
        # Projections publish nothing; their version field stays `rev` (stored documents
        # kept their meaning), their logs `cases_revisions` and `handovers_revisions`.
        self.case_store = Revisions(db, "cases", settings=settings, version_field="rev")
        self.handover_store = Revisions(db, "handovers", settings=settings, version_field="rev")
        # The registry's snapshots keep the registry's `version`; the engine counts in `rev`.
        self.organisation_store = Revisions(db, "organisations", settings=settings, version_field="rev")
        self.mediator_store = Revisions(db, "mediators", settings=settings, version_field="rev")
        # Alert changes carry their events (stats.alerts.v1) in their revision; without a
        # publisher (the rebuild) they may only change state.
        self.alert_store = Revisions(db, "alerts", publisher=publisher, settings=settings)
        self.job_store = Revisions(db, "jobs", settings=settings)
        self.stores = (
            self.case_store,
            self.handover_store,
            self.organisation_store,
            self.mediator_store,
            self.alert_store,
            self.job_store,
        )
        self.cases = self.case_store.docs
        self.handovers = self.handover_store.docs
        self.organisations = self.organisation_store.docs
        self.mediators = self.mediator_store.docs
        self.alerts = self.alert_store.docs
        self.party_cases = db["party_cases"]
        self.daily_counts = db["daily_counts"]
        self.jobs = self.job_store.docs
        self.forecasts = db["forecasts"]

    async def create_indexes(self) -> None:
        spec: dict[str, list[IndexModel]] = dict(INDEXES)
        for store in self.stores:
            spec.update(store.indexes)
        await ensure_indexes(self.db, spec)

    async def sweep(self) -> int:
        """Roll forward (and publish) what crashed writers left unsettled, in every store."""
        settled = 0
        for store in self.stores:
            settled += await store.sweep()
        return settled

    async def mark_recounts(self, marks: Sequence[tuple[str, int, Iterable[str | None]]]) -> None:
        """The daily counts of these days must be redone: one mark per (case, revision),
        all of a batch in one insert (idempotent: a mark already there stays)."""
        docs = []
        for case_id, rev, days in marks:
            wanted = sorted({d for d in days if d})
            if wanted:
                docs.append({"_id": f"{case_id}#{rev}", "days": wanted})
        await _insert_new(self.db["recounts"], docs)

    # -- cases -----------------------------------------------------------------------------
    async def cases_for(
        self,
        counties: Sequence[str],
        *,
        months: Sequence[str] | None,
        township: str | None = None,
        category: str | None = None,
        fields: Iterable[str] | None = None,
    ) -> list[Document]:
        """Cases of these counties that touched any of these months (all when None)."""
        projection = dict.fromkeys(fields, 1) if fields else None
        found: dict[str, Document] = {}
        for county in counties:
            base: Document = {"county": county}
            if township is not None:
                base["township"] = township
            if category is not None:
                base["category"] = category
            for query in [{**base, "months": m} for m in months] if months is not None else [base]:
                async for doc in self.cases.find(query, projection):
                    found[doc["_id"]] = doc
        return list(found.values())

    async def open_cases(self, counties: Sequence[str] | None = None) -> list[Document]:
        fields = {
            "county": 1,
            "township": 1,
            "category": 1,
            "status": 1,
            "open": 1,
            "acceptance_due": 1,
            "acceptance_paused": 1,
            "mediation_due": 1,
            "mediation_paused": 1,
        }
        if counties is None:
            return await self.cases.find({"open": True}, fields).to_list()
        found: list[Document] = []
        for county in counties:
            found += await self.cases.find({"county": county, "open": True}, fields).to_list()
        return found

    async def uncounted_days(self, limit: int = 5000) -> dict[str, list[str]]:
        """Days whose counts are stale, with the marks that made them so."""
        days: dict[str, list[str]] = {}
        async for doc in self.db["recounts"].find({}).limit(limit):
            for day in doc.get("days") or []:
                days.setdefault(day, []).append(doc["_id"])
        return days

    async def received_on(self, day: str) -> list[Document]:
        return await self.cases.find(
            {"received_day": day}, {"county": 1, "township": 1, "category": 1}
        ).to_list()

    async def mark_counted(self, marks: Sequence[str]) -> None:
        """Drop recount marks once their days are recounted (a mark added meanwhile has
        another id and stays)."""
        for start in range(0, len(marks), 500):
            await self.db["recounts"].delete_many({"_id": {"$in": list(marks[start : start + 500])}})

    # -- daily counts (materialised from the cases) --------------------------------------------
    async def save_daily_counts(self, day: str, counts: dict[str, int]) -> None:
        await self.daily_counts.replace_one(
            {"_id": day}, {"_id": day, "month": day[:7], "counts": counts}, upsert=True
        )

    async def daily_counts_between(self, first: date, last: date) -> dict[str, dict[str, int]]:
        months = sorted({f"{y:04d}-{m:02d}" for y, m in _months(first, last)})
        out: dict[str, dict[str, int]] = {}
        for month in months:
            async for doc in self.daily_counts.find({"month": month}):
                if first.isoformat() <= doc["_id"] <= last.isoformat():
                    out[doc["_id"]] = doc.get("counts", {})
        return out

    async def drop_daily_counts(self) -> None:
        await self.daily_counts.delete_many({})

    async def all_received_days(self) -> list[str]:
        days: set[str] = set()
        async for doc in self.cases.find({}, {"received_day": 1}):
            if doc.get("received_day"):
                days.add(doc["received_day"])
        return sorted(days)

    # -- handovers ---------------------------------------------------------------------------
    async def handovers_for(self, counties: Sequence[str], *, months: Sequence[str] | None) -> list[Document]:
        found: dict[str, Document] = {}
        for county in counties:
            queries = (
                [{"county": county, "months": m} for m in months]
                if months is not None
                else [{"county": county}]
            )
            for query in queries:
                async for doc in self.handovers.find(query):
                    found[doc["_id"]] = doc
        return list(found.values())

    async def open_handovers(self) -> list[Document]:
        return await self.handovers.find(
            {"open": True}, {"county": 1, "agency_kind": 1, "overdue_stages": 1, "kind": 1}
        ).to_list()

    # -- registry snapshots --------------------------------------------------------------------
    def registry_store(self, kind: str) -> Revisions:
        """The store of the registry's organisation or mediator snapshots."""
        return self.organisation_store if kind == "organisation" else self.mediator_store

    async def registry_of(self, county: str) -> tuple[list[Document], list[Document]]:
        orgs = await self.organisations.find({"county": county}).to_list()
        mediators = await self.mediators.find({"county": county}).to_list()
        return orgs, mediators

    # -- parties (keyed hashes only) ---------------------------------------------------------------
    async def add_party_cases(self, records: Sequence[PartyRecord]) -> dict[str, dict[str, Document]]:
        """Record cases under their party keys and read back, for every key of `records`,
        {case id: info} of each case recorded under it (these included), as the case's latest
        recorded revision tells it. Each record is an insert of its own document
        (`<key>#<case>#<rev>`; all of a batch in one insert): concurrent cases never write
        one document, and a redelivery or a slower handler of an older revision never
        overwrites a newer one. Every key is then read once, however many cases share it."""
        docs = [
            {
                "_id": f"{key}#{r.case_id}#{r.rev:09d}",
                "key": key,
                "case_id": r.case_id,
                "rev": r.rev,
                "info": r.info,
            }
            for r in records
            for key in r.keys
        ]
        await _insert_new(self.party_cases, docs)
        keys = sorted({key for r in records for key in r.keys})
        found = await asyncio.gather(*(self.party_cases.find({"key": key}).to_list() for key in keys))
        index: dict[str, dict[str, Document]] = {}
        for key, entries in zip(keys, found, strict=True):
            latest: dict[str, Document] = {}
            for d in entries:
                # Records written before revisions were part of the id count as revision 0.
                known = latest.get(d["case_id"])
                if known is None or int(d.get("rev", 0)) > int(known.get("rev", 0)):
                    latest[d["case_id"]] = d
            index[key] = {c: d.get("info") or {} for c, d in latest.items()}
        return index

    # -- alerts ------------------------------------------------------------------------------
    async def get_alert(self, alert_id: str) -> Document | None:
        return await self.alert_store.get(alert_id)

    async def alerts_of(self, counties: Sequence[str]) -> list[Document]:
        found: list[Document] = []
        for county in counties:
            found += await self.alerts.find({"county": county}).to_list()
        return found

    async def active_alerts(self) -> list[Document]:
        return await self.alerts.find({"status": "active"}).to_list()

    # -- analytics bookkeeping ----------------------------------------------------------------------
    async def get_job(self, name: str) -> Document | None:
        return await self.job_store.get(name)

    async def record_detection(self, *, since: str, through: str, first: str, digest: str) -> None:
        await self.jobs.replace_one(
            {"_id": f"detection:{since}:{through}"},
            {"kind": "detection", "since": since, "through": through, "first": first, "digest": digest},
            upsert=True,
        )

    async def detection_records(self) -> list[Document]:
        return await self.jobs.find({"kind": "detection"}).to_list()

    async def save_forecasts(self, docs: Sequence[Document]) -> None:
        await bulk_write_chunked(
            self.forecasts, [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs]
        )

    async def forecast_of(self, county: str) -> Document | None:
        return await self.forecasts.find_one({"_id": county})


async def _insert_new(collection: AsyncCollection[Document], docs: Sequence[Document]) -> None:
    """Insert documents with deterministic ids, in few commands; those already there stay."""
    for start in range(0, len(docs), _INSERT_CHUNK):
        chunk = list(docs[start : start + _INSERT_CHUNK])
        try:
            if len(chunk) == 1:
                await insert_once(collection, chunk[0])
            else:
                await collection.insert_many(chunk, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != _DUPLICATE for e in exc.details.get("writeErrors", [])):
                raise


def _months(first: date, last: date) -> list[tuple[int, int]]:
    out = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        out.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def months_between(first: date, last: date) -> list[str]:
    return [f"{y:04d}-{m:02d}" for y, m in _months(first, last)]


__all__ = ["PartyRecord", "StatsRepository", "months_between"]
