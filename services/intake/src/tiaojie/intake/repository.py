"""The only module that touches intake's collections; it creates their indexes.

Every read on behalf of a person goes through a scope (`access.Scope`: counties, the
organisations of an organisation-scoped token, and for a mediator their own cases): a
case outside it is indistinguishable from a missing one. Hot queries are equality
filters on indexed top-level fields (FerretDB pushes only those down), mostly on `_id`.

Writes to a case go through the runtime's storage engine (`tiaojie.runtime.revisions`):
FerretDB 1.24 applies concurrent updates of one document non-atomically (ten concurrent
`$set`s of different fields kept about four; ten updates guarded by one `version` all
reported success), an insert under a unique key atomically. So each new state of a case
is claimed by inserting its revision into `case_revisions`, with its events (the outbox).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from tiaojie.contracts.registry import OrganisationUpdated
from tiaojie.intake.access import Scope
from tiaojie.intake.models import CaseDoc, SubmissionReceipt
from tiaojie.runtime.directory import Directory, Organisation
from tiaojie.runtime.kafka import EventPublisher
from tiaojie.runtime.mongo import (
    Document,
    ensure_indexes,
    insert_once,
    upsert_one,
)
from tiaojie.runtime.revisions import Revisions
from tiaojie.runtime.settings import RuntimeSettings

MAX_PAGE = 200  # the largest page of a list, whatever a caller asks for

INDEXES = {
    "cases": [
        IndexModel([("tracking_code", ASCENDING)], unique=True),
        IndexModel([("county", ASCENDING)]),
        IndexModel([("county", ASCENDING), ("status", ASCENDING)]),
        # Lists: newest first within the caller's counties, sorted and cut in the database.
        IndexModel([("county", ASCENDING), ("received_at", DESCENDING)]),
        IndexModel([("mediator_id", ASCENDING)]),
        IndexModel([("organisation_id", ASCENDING)]),
        IndexModel([("accept_pending", ASCENDING)]),
    ],
    # One document per issued case number: _id "<organisation>:<year>:<n>"; the unique
    # case_id makes a case get at most one number, the _id at most one case per number.
    "case_numbers": [IndexModel([("case_id", ASCENDING)], unique=True)],
    # Append-only; queried by case or by county, in time order; pruned by `at`.
    "audit": [
        IndexModel([("case_id", ASCENDING), ("at", ASCENDING)]),
        IndexModel([("county", ASCENDING), ("at", ASCENDING)]),
        IndexModel([("at", ASCENDING)]),
    ],
    "submission_receipts": [IndexModel([("tracking_code", ASCENDING)], unique=True)],
    "party_visits": [IndexModel([("party_key", ASCENDING)])],
}


class IntakeRepository:
    def __init__(
        self,
        db: AsyncDatabase[Document],
        *,
        publisher: EventPublisher | None = None,
        settings: RuntimeSettings | None = None,
    ) -> None:
        self.db = db
        # Cases change only through the engine; `cases` holds their snapshots.
        self.store = Revisions(
            db, "cases", publisher=publisher, settings=settings, log_collection="case_revisions"
        )
        self.cases = self.store.docs
        self.directory = Directory(db)
        self.counters = db["case_counters"]
        self.numbers = db["case_numbers"]
        self.fingerprints = db["duplicate_fingerprints"]
        self.visits = db["party_visits"]
        self.links = db["submission_links"]
        self.audit = db["audit"]
        self.receipts = db["submission_receipts"]

    async def create_indexes(self) -> None:
        # One index per command: FerretDB 1.24 fails when several that exist are re-created
        # in one createIndexes (seen by the referral service on restart).
        for collection, indexes in {**INDEXES, **self.store.indexes, **self.directory.indexes}.items():
            for index in indexes:
                await ensure_indexes(self.db, {collection: [index]})

    # -- cases ----------------------------------------------------------------------
    async def get_case(self, case_id: str) -> CaseDoc | None:
        """A case regardless of scope (event handling and internal steps only)."""
        doc = await self.cases.find_one({"_id": case_id})
        return CaseDoc.model_validate(doc) if doc else None

    async def get_case_raw(self, case_id: str) -> Document | None:
        return await self.cases.find_one({"_id": case_id})

    async def get_case_in(self, case_id: str, scope: Scope) -> CaseDoc | None:
        """A case, only if the scope admits it."""
        doc = await self.cases.find_one({"_id": case_id})
        if doc is None or not scope.admits(doc):
            return None
        return CaseDoc.model_validate(doc)

    async def case_by_tracking_code(self, code: str) -> CaseDoc | None:
        doc = await self.cases.find_one({"tracking_code": code})
        return CaseDoc.model_validate(doc) if doc else None

    async def list_cases(
        self,
        scope: Scope,
        *,
        status: str | None = None,
        organisation_id: str | None = None,
        limit: int = 50,
        skip: int = 0,
    ) -> list[CaseDoc]:
        """Cases the scope admits, newest first: filtered, sorted and cut in the database,
        never more than MAX_PAGE of them."""
        query: Document = {"county": {"$in": sorted(scope.counties)}}
        if scope.mediator_id is not None:
            query["mediator_id"] = scope.mediator_id
        if scope.organisations is not None:
            # The caller's organisations, and the county's cases no organisation holds yet.
            query["organisation_id"] = {"$in": [*sorted(scope.organisations), None]}
        if status:
            query["status"] = status
        if organisation_id:
            if not (scope.organisations is None or organisation_id in scope.organisations):
                return []
            query["organisation_id"] = organisation_id
        cursor = (
            self.cases.find(query, {"history": 0, "outbox": 0, "applied": 0})
            .sort([("received_at", DESCENDING), ("_id", DESCENDING)])
            .skip(max(skip, 0))
            .limit(max(1, min(limit, MAX_PAGE)))
        )
        return [CaseDoc.model_validate(d) for d in await cursor.to_list() if scope.admits(d)]

    async def pending_acceptances(self, limit: int = 100) -> list[str]:
        docs = await self.cases.find({"accept_pending": True}, {"_id": 1}).to_list(limit)
        return [d["_id"] for d in docs]

    # -- case numbers -----------------------------------------------------------------
    async def number_of(self, case_id: str) -> int | None:
        doc = await self.numbers.find_one({"case_id": case_id})
        return int(doc["n"]) if doc else None

    async def claim_number(self, *, counter: str, case_id: str, at: datetime) -> int:
        """The next number of a counter for this case, gap-free and at most one per case.

        Numbers are slots `<counter>:<n>` claimed by insert: a slot is taken by exactly
        one case (its _id) and a case takes exactly one slot (unique case_id). The counter
        document only remembers how far the slots are filled; it is advanced after a
        claim by whoever sees the slot taken, so a crash between the two steps costs
        nothing. A retry for the same case finds its slot and gets the same number.
        """
        while True:
            existing = await self.number_of(case_id)
            if existing is not None:
                return existing
            state = await self.counters.find_one({"_id": counter})
            filled = int(state["filled"]) if state else 0
            n = filled + 1
            try:
                await self.numbers.insert_one(
                    {"_id": f"{counter}:{n}", "counter": counter, "n": n, "case_id": case_id, "at": at}
                )
            except DuplicateKeyError:
                # Either this case already holds a number (a concurrent retry won) or the
                # slot is taken: only then may the counter move past it.
                existing = await self.number_of(case_id)
                if existing is not None:
                    return existing
                await self._advance(counter, filled, n)
                continue
            await self._advance(counter, filled, n)
            return n

    async def _advance(self, counter: str, filled: int, to: int) -> None:
        """Move the counter from `filled` to `to` unless someone did already."""
        if filled == 0:
            try:
                await self.counters.insert_one({"_id": counter, "filled": to})
                return
            except DuplicateKeyError:
                pass
        await self.counters.update_one({"_id": counter, "filled": filled}, {"$set": {"filled": to}})

    async def numbers_of(self, counter: str) -> list[int]:
        docs = await self.numbers.find({"counter": counter}, {"n": 1}).to_list()
        return sorted(int(d["n"]) for d in docs)

    # -- duplicates, visits, submission links -------------------------------------------
    async def fingerprint(self, key: str) -> Document | None:
        return await self.fingerprints.find_one({"_id": key})

    async def put_fingerprint(self, key: str, *, case_id: str, at: datetime) -> None:
        await upsert_one(self.fingerprints, {"_id": key}, {"$set": {"case_id": case_id, "at": at}})

    async def add_visit(self, party_key: str, *, case_id: str, at: datetime) -> None:
        """Remember that this party came with this case (one document per visit)."""
        await insert_once(
            self.visits,
            {"_id": f"{party_key}:{case_id}", "party_key": party_key, "case_id": case_id, "at": at},
        )

    async def visits_of(self, party_key: str) -> dict[str, datetime]:
        docs = await self.visits.find({"party_key": party_key}, {"case_id": 1, "at": 1}).to_list()
        return {d["case_id"]: d["at"] for d in docs}

    async def put_receipt(self, receipt: SubmissionReceipt) -> None:
        await insert_once(self.receipts, receipt.model_dump(mode="python", by_alias=True))

    async def receipt_of(self, submission_id: str) -> SubmissionReceipt | None:
        doc = await self.receipts.find_one({"_id": submission_id})
        return SubmissionReceipt.model_validate(doc) if doc else None

    async def receipt_by_tracking_code(self, code: str) -> SubmissionReceipt | None:
        doc = await self.receipts.find_one({"tracking_code": code})
        return SubmissionReceipt.model_validate(doc) if doc else None

    async def link_of(self, submission_id: str) -> str | None:
        doc = await self.links.find_one({"_id": submission_id})
        return str(doc["case_id"]) if doc else None

    async def put_link(self, submission_id: str, *, case_id: str, at: datetime) -> None:
        await upsert_one(self.links, {"_id": submission_id}, {"$setOnInsert": {"case_id": case_id, "at": at}})

    # -- audit --------------------------------------------------------------------------
    async def record_audit(self, entry: Document) -> None:
        """Append one entry (who, role, when, which case, what, purpose): the log is only
        ever inserted into here, and removed from only by the retention prune."""
        await self.audit.insert_one({"_id": str(uuid.uuid4()), **entry})

    async def audit_of(self, case_id: str) -> list[Document]:
        return await self.audit.find({"case_id": case_id}, {"_id": 0}).sort("at", ASCENDING).to_list()

    async def audit_page(
        self,
        *,
        counties: frozenset[str],
        case_id: str | None,
        since: datetime | None,
        until: datetime | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Document]:
        """Entries of the counties (a case: of the case, if its county is among them), in
        time order from just after the cursor `after` (its time and id)."""
        query: Document = {}
        if case_id is not None:
            case = await self.cases.find_one({"_id": case_id}, {"county": 1})
            # Reads made while the case was in another county stay with that county;
            # the case's own county sees them all.
            if case is not None and case.get("county") in counties:
                query["case_id"] = case_id
            else:
                query = {"case_id": case_id, "county": {"$in": sorted(counties)}}
        else:
            query["county"] = {"$in": sorted(counties)}
        window: Document = {}
        if since is not None:
            window["$gte"] = since
        if until is not None:
            window["$lt"] = until
        if window:
            query["at"] = window
        if after is not None:
            at, entry_id = after
            query = {"$and": [query, {"$or": [{"at": {"$gt": at}}, {"at": at, "_id": {"$gt": entry_id}}]}]}
        cursor = self.audit.find(query).sort([("at", ASCENDING), ("_id", ASCENDING)]).limit(limit)
        return await cursor.to_list()

    async def prune_audit(self, *, before: datetime) -> int:
        """Remove entries older than the retention period (FerretDB 1.24 has no TTL index)."""
        result = await self.audit.delete_many({"at": {"$lt": before}})
        return int(result.deleted_count)

    # -- organisations projection -----------------------------------------------------
    async def project_organisation(self, event: OrganisationUpdated) -> bool:
        return await self.directory.project(event)

    async def organisations_in(self, county: str) -> list[Organisation]:
        return await self.directory.in_county(county)

    async def get_organisation(self, organisation_id: str) -> Organisation | None:
        return await self.directory.get(organisation_id)


__all__ = ["INDEXES", "MAX_PAGE", "IntakeRepository", "Scope", "Sequence"]
