"""The only module that touches stats' collections; it creates their indexes.

Every hot query is an equality on an indexed top-level field (DESIGN.md §5): cases by
county and by a month they touched (`months`, an array: equality matches an element), by
`open`, by `received_day`; alerts by county; daily counts by `_id` (the day).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime

from pymongo import ASCENDING, IndexModel, ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from tiaojie.runtime.mongo import (
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
    ],
    "handovers": [IndexModel([("county", ASCENDING)]), IndexModel([("months", ASCENDING)])],
    "organisations": [IndexModel([("county", ASCENDING)])],
    "mediators": [IndexModel([("county", ASCENDING)])],
    "alerts": [
        IndexModel([("county", ASCENDING)]),
        IndexModel([("status", ASCENDING)]),
    ],
    # One document per alert event, _id = the event's deterministic id: inserting it is
    # what makes an alert change happen once; `published` once it is on the topic.
    "alert_events": [IndexModel([("published", ASCENDING)])],
    # Claims to publish an alert event (_id = event id and attempt number).
    "alert_claims": [],
    # One document per (party key, case): concurrent cases never write one shared document.
    "party_cases": [IndexModel([("key", ASCENDING)])],
    # Revisions of the projections (_id = document id and revision number).
    "cases_revisions": [],
    "handovers_revisions": [],
    # Days whose daily counts must be redone (_id = case id and the revision that moved it).
    "recounts": [],
    "daily_counts": [IndexModel([("month", ASCENDING)])],
    "jobs": [IndexModel([("kind", ASCENDING)])],
    "forecasts": [],
}
# Bookkeeping fields that are not facts (ignored when deciding whether anything changed).
# `counted` is False on a revision that moved a case's daily-count fields.
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
        self.party_cases = db["party_cases"]
        self.daily_counts = db["daily_counts"]
        self.jobs = db["jobs"]
        self.forecasts = db["forecasts"]

    async def create_indexes(self) -> None:
        await ensure_indexes(self.db, INDEXES)

    # -- projections: a revision log guarded by unique ids, and a snapshot of its head -------
    #
    # FerretDB 1.24 applies concurrent updates of one document non-atomically: a
    # replace_one({"_id": x, "rev": n}) run twice at once matches twice, so a conditional
    # update is no compare-and-set. An insert against the unique _id is: revision n + 1 of a
    # projection is one insert of `<id>#<n+1>`, and exactly one writer wins it. The
    # document in the collection itself (what queries read) is a snapshot of the latest
    # revision, rewritten until no newer revision exists (see write_snapshot).
    def revisions(self, collection: AsyncCollection[Document]) -> AsyncCollection[Document]:
        return self.db[f"{collection.name}_revisions"]

    async def get(self, collection: AsyncCollection[Document], doc_id: str) -> Document | None:
        return await collection.find_one({"_id": doc_id})

    async def latest(self, collection: AsyncCollection[Document], doc_id: str) -> tuple[Document | None, int]:
        """The latest revision of a projection (with `rev`), and the revision its snapshot shows."""
        doc, shown = await self.snapshot(collection, doc_id)
        return await self.newer(collection, doc_id, doc, shown), shown

    async def snapshot(
        self, collection: AsyncCollection[Document], doc_id: str
    ) -> tuple[Document | None, int]:
        """The snapshot of a projection and its revision (the head's, or behind it)."""
        doc = await collection.find_one({"_id": doc_id})
        return doc, int(doc.get("rev", 0)) if doc else 0

    async def newer(
        self, collection: AsyncCollection[Document], doc_id: str, doc: Document | None, rev: int
    ) -> Document | None:
        revisions = self.revisions(collection)
        while True:
            found = await revisions.find_one({"_id": f"{doc_id}#{rev + 1}"})
            if found is None:
                return doc
            rev += 1
            doc = {**found["doc"], "_id": doc_id, "rev": rev}

    async def add_revision(self, collection: AsyncCollection[Document], doc: Document, *, rev: int) -> bool:
        """Insert revision `rev` of a projection; False if another writer took that number."""
        body = {k: v for k, v in doc.items() if k not in ("_id", "rev")}
        return await insert_once(
            self.revisions(collection), {"_id": f"{doc['_id']}#{rev}", "of": doc["_id"], "doc": body}
        )

    async def write_snapshot(self, collection: AsyncCollection[Document], doc: Document) -> None:
        """Show the latest revision (from `doc`, revision doc["rev"], on).

        A slower writer may overwrite the snapshot with an older revision after us, but it
        then finds the newer revision and writes again: whoever writes last has seen the
        head, so the snapshot always ends at the head."""
        current: Document | None = doc
        while current is not None:
            rev = int(current["rev"])
            try:
                await collection.replace_one({"_id": current["_id"]}, current, upsert=True)
            except DuplicateKeyError:  # a concurrent upsert inserted it first
                await collection.replace_one({"_id": current["_id"]}, current)
            current = await self.newer(collection, current["_id"], None, rev)

    async def mark_recount(self, case_id: str, rev: int, days: Iterable[str]) -> None:
        """The daily counts of these days must be redone (idempotent)."""
        wanted = sorted({d for d in days if d})
        if wanted:
            await insert_once(self.db["recounts"], {"_id": f"{case_id}#{rev}", "days": wanted})

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
        """Record a case under each party key; returns, per key, {"cases": {case id: info}}
        of every case recorded under it (this one included). One document per (key, case):
        cases of shared parties handled at once never write the same document."""
        party_cases = self.party_cases
        for key in keys:
            doc = {"_id": f"{key}#{case_id}", "key": key, "case_id": case_id, "info": info}
            try:
                await party_cases.replace_one({"_id": doc["_id"]}, doc, upsert=True)
            except DuplicateKeyError:  # the same case handled twice at once: same content
                pass
        found: list[Document] = []
        for key in keys:
            cases = {d["case_id"]: d.get("info") or {} async for d in party_cases.find({"key": key})}
            if cases:
                found.append({"_id": key, "cases": cases})
        return found

    # -- alerts ------------------------------------------------------------------------------
    async def insert_alert(self, doc: Document) -> bool:
        return await insert_once(self.alerts, doc)

    async def get_alert(self, alert_id: str) -> Document | None:
        return await self.alerts.find_one({"_id": alert_id})

    async def merge_alert(self, alert_id: str, fields: Document) -> None:
        await self.alerts.update_one({"_id": alert_id}, {"$set": fields})

    async def alerts_of(self, counties: Sequence[str]) -> list[Document]:
        found: list[Document] = []
        for county in counties:
            found += await self.alerts.find({"county": county}).to_list()
        return found

    async def active_alerts(self) -> list[Document]:
        return await self.alerts.find({"status": "active"}).to_list()

    async def add_alert_event(self, doc: Document) -> bool:
        """Record an alert event (deterministic _id); False if it was already recorded."""
        return await insert_once(self.db["alert_events"], {**doc, "published": False})

    async def unpublished_alert_events(self) -> list[Document]:
        return await self.db["alert_events"].find({"published": False}).to_list()

    async def claim_alert_event(self, event_id: str, attempt: int, at: datetime) -> bool:
        return await insert_once(self.db["alert_claims"], {"_id": f"{event_id}#{attempt}", "at": at})

    async def last_claim(self, event_id: str) -> tuple[int, datetime | None]:
        """The number and time of the latest claim on an event (0, None: none)."""
        attempt, at = 0, None
        while True:
            found = await self.db["alert_claims"].find_one({"_id": f"{event_id}#{attempt + 1}"})
            if found is None:
                return attempt, at
            attempt, at = attempt + 1, found.get("at")

    async def mark_published(self, event_id: str) -> None:
        await self.db["alert_events"].update_one({"_id": event_id}, {"$set": {"published": True}})

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
