"""The only module that touches stats' collections; it creates their indexes.

Every hot query is an equality on an indexed top-level field (DESIGN.md §5): cases by
county and by a month they touched (`months`, an array: equality matches an element), by
`open`, by `received_day`; alerts by county; daily counts by `_id` (the day).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime

from pymongo import ASCENDING, IndexModel, ReplaceOne, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from tiaojie.runtime.mongo import (
    OUTBOX,
    OUTBOX_PENDING,
    Document,
    bulk_write_chunked,
    ensure_indexes,
    insert_once,
    upsert_versioned,
)

INDEXES = {
    "cases": [
        IndexModel([("county", ASCENDING)]),
        IndexModel([("months", ASCENDING)]),
        IndexModel([("open", ASCENDING)]),
        IndexModel([("received_day", ASCENDING)]),
        IndexModel([("counted", ASCENDING)]),
    ],
    "handovers": [IndexModel([("county", ASCENDING)]), IndexModel([("months", ASCENDING)])],
    "organisations": [IndexModel([("county", ASCENDING)])],
    "mediators": [IndexModel([("county", ASCENDING)])],
    "alerts": [
        IndexModel([("county", ASCENDING)]),
        IndexModel([("status", ASCENDING)]),
        IndexModel([(OUTBOX_PENDING, ASCENDING)]),
    ],
    "parties": [],
    "daily_counts": [IndexModel([("month", ASCENDING)])],
    "jobs": [IndexModel([("kind", ASCENDING)])],
    "forecasts": [],
}
# Bookkeeping fields that are not facts (ignored when deciding whether anything changed).
_BOOKKEEPING = frozenset({"_id", "rev", "counted"})


def same_facts(before: Document | None, after: Document) -> bool:
    if before is None:
        return False
    keys = (set(before) | set(after)) - _BOOKKEEPING
    return all(before.get(k) == after.get(k) for k in keys)


class StatsRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.cases = db["cases"]
        self.handovers = db["handovers"]
        self.organisations = db["organisations"]
        self.mediators = db["mediators"]
        self.alerts = db["alerts"]
        self.parties = db["parties"]
        self.daily_counts = db["daily_counts"]
        self.jobs = db["jobs"]
        self.forecasts = db["forecasts"]

    async def create_indexes(self) -> None:
        await ensure_indexes(self.db, INDEXES)

    # -- projections with optimistic concurrency --------------------------------------------
    async def get(self, collection: AsyncCollection[Document], doc_id: str) -> Document | None:
        return await collection.find_one({"_id": doc_id})

    async def save(self, collection: AsyncCollection[Document], doc: Document, *, rev: int | None) -> bool:
        """Write a projection if nobody wrote it since it was read at `rev` (None: new)."""
        if rev is None:
            return await insert_once(collection, {**doc, "rev": 1})
        result = await collection.replace_one({"_id": doc["_id"], "rev": rev}, {**doc, "rev": rev + 1})
        return result.matched_count == 1

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

    async def uncounted_days(self, limit: int = 5000) -> dict[str, list[tuple[str, int]]]:
        """Days whose counts are stale, with the (case id, rev) that made them so."""
        days: dict[str, list[tuple[str, int]]] = {}
        async for doc in self.cases.find({"counted": False}, {"received_day": 1, "rev": 1}).limit(limit):
            if doc.get("received_day"):
                days.setdefault(doc["received_day"], []).append((doc["_id"], doc.get("rev", 0)))
        return days

    async def received_on(self, day: str) -> list[Document]:
        return await self.cases.find(
            {"received_day": day}, {"county": 1, "township": 1, "category": 1}
        ).to_list()

    async def mark_counted(self, marks: Sequence[tuple[str, int]]) -> None:
        await bulk_write_chunked(
            self.cases,
            [UpdateOne({"_id": case_id, "rev": rev}, {"$set": {"counted": True}}) for case_id, rev in marks],
        )

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
    async def upsert_snapshot(
        self, collection: AsyncCollection[Document], *, doc_id: str, version: int, fields: Document
    ) -> bool:
        return await upsert_versioned(collection, id=doc_id, version=version, fields=fields)

    async def registry_of(self, county: str) -> tuple[list[Document], list[Document]]:
        orgs = await self.organisations.find({"county": county}).to_list()
        mediators = await self.mediators.find({"county": county}).to_list()
        return orgs, mediators

    # -- parties (keyed hashes only) ---------------------------------------------------------------
    async def add_party_case(self, keys: Sequence[str], case_id: str, info: Document) -> list[Document]:
        """Record a case under each party key; returns the party documents after."""
        await bulk_write_chunked(
            self.parties,
            [UpdateOne({"_id": key}, {"$set": {f"cases.{case_id}": info}}, upsert=True) for key in keys],
        )
        found: list[Document] = []
        for key in keys:
            doc = await self.parties.find_one({"_id": key})
            if doc:
                found.append(doc)
        return found

    # -- alerts ------------------------------------------------------------------------------
    async def insert_alert(self, doc: Document) -> bool:
        return await insert_once(self.alerts, doc)

    async def get_alert(self, alert_id: str) -> Document | None:
        return await self.alerts.find_one({"_id": alert_id}, {OUTBOX: 0})

    async def update_alert(self, alert_id: str, where: Document, update: Document) -> Document | None:
        """Conditionally update an alert; returns it after, or None if the condition failed."""
        return await self.alerts.find_one_and_update(
            {"_id": alert_id, **where}, update, return_document=ReturnDocument.AFTER
        )

    async def merge_alert(self, alert_id: str, fields: Document) -> None:
        await self.alerts.update_one({"_id": alert_id}, {"$set": fields})

    async def alerts_of(self, counties: Sequence[str]) -> list[Document]:
        found: list[Document] = []
        for county in counties:
            found += await self.alerts.find({"county": county}, {OUTBOX: 0}).to_list()
        return found

    async def active_alerts(self) -> list[Document]:
        return await self.alerts.find({"status": "active"}, {OUTBOX: 0}).to_list()

    # -- analytics bookkeeping ----------------------------------------------------------------------
    async def get_job(self, name: str) -> Document | None:
        return await self.jobs.find_one({"_id": name})

    async def take_lease(self, name: str, *, owner: str, now: datetime, until: datetime) -> bool:
        """Take a job's lease if it is free or expired (one replica runs the job)."""
        if await insert_once(self.jobs, {"_id": name, "owner": owner, "lease_until": until}):
            return True
        doc = await self.jobs.find_one({"_id": name})
        if doc is None:
            return False
        lease = doc.get("lease_until")
        if lease is not None and lease > now and doc.get("owner") != owner:
            return False
        result = await self.jobs.update_one(
            {"_id": name, "lease_until": lease}, {"$set": {"owner": owner, "lease_until": until}}
        )
        return result.matched_count == 1

    async def finish_job(self, name: str, fields: Document) -> None:
        await self.jobs.update_one({"_id": name}, {"$set": {**fields, "lease_until": None}})

    async def save_state(self, name: str, fields: Document) -> None:
        await self.jobs.update_one({"_id": name}, {"$set": fields}, upsert=True)

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


def _months(first: date, last: date) -> list[tuple[int, int]]:
    out = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        out.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def months_between(first: date, last: date) -> list[str]:
    return [f"{y:04d}-{m:02d}" for y, m in _months(first, last)]


__all__ = ["DuplicateKeyError", "StatsRepository", "months_between", "same_facts"]
