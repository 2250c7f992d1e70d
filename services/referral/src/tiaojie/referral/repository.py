"""The only module that touches the referral service's collections; it creates their indexes.

FerretDB 1.24 does not make a conditional update atomic: measured, 12 concurrent
`update_one({"_id": x, "state": "pending"}, ...)` let several writers win in 28 of 30
rounds (and their whole-document writes overwrote each other), while a unique insert let
exactly one win in 60 of 60. So every aggregate the service changes (referrals,
transfers, agencies, the projection of cases, and the runtime's organisation directory)
is a store of the runtime's storage engine (`tiaojie.runtime.revisions`): each change is
claimed by the unique insert of its revision, which carries the new state and its
events. The other writes are inserts of facts with deterministic ids (credential
changes, rejection notices) and the timer sweep's cursor.
"""

from __future__ import annotations

import asyncio
from datetime import date

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from tiaojie.referral.models import AgencyDoc, CaseView
from tiaojie.runtime.directory import Directory
from tiaojie.runtime.kafka import EventPublisher
from tiaojie.runtime.mongo import OUTBOX_PENDING, Document, ensure_indexes, insert_once, upsert_one
from tiaojie.runtime.revisions import Revisions
from tiaojie.runtime.settings import RuntimeSettings

INDEXES = {
    "agencies": [IndexModel([("county", ASCENDING)])],
    # One document per issue, rotation or revocation of an agency's broker credential,
    # `<agency>:<seq>`: the unique _id serialises them (and is their audit trail).
    "agency_credentials": [IndexModel([("agency_id", ASCENDING), ("seq", ASCENDING)])],
    "referrals": [
        IndexModel([("county", ASCENDING)]),
        IndexModel([("status", ASCENDING)]),
        IndexModel([("agency_id", ASCENDING)]),
        IndexModel([("case_id", ASCENDING)]),
        IndexModel([("linked_case_id", ASCENDING)]),
        IndexModel([("overdue", ASCENDING)]),
        IndexModel([("timer_day", ASCENDING)]),
    ],
    "transfers": [
        IndexModel([("case_id", ASCENDING)]),
        IndexModel([("county", ASCENDING)]),
        IndexModel([("overdue", ASCENDING)]),
        IndexModel([("timer_day", ASCENDING)]),
    ],
    "rejections": [IndexModel([(OUTBOX_PENDING, ASCENDING)])],
}
_CURSOR = "timers"


# From this many cases a batch's referral and transfer lookups are one scan each instead
# of indexed lookups per case.
SCAN_FROM = 16


class ReferralRepository:
    def __init__(
        self,
        db: AsyncDatabase[Document],
        *,
        publisher: EventPublisher | None = None,
        settings: RuntimeSettings | None = None,
    ) -> None:
        self.db = db

        def store(collection: str, log: str) -> Revisions:
            return Revisions(db, collection, publisher=publisher, settings=settings, log_collection=log)

        self.referrals = store("referrals", "referral_revisions")
        self.transfers = store("transfers", "transfer_revisions")
        self.agencies = store("agencies", "agency_revisions")
        self.cases = store("cases", "case_revisions")
        # The registry's organisations, in the collections referral's own projection used.
        self.directory = Directory(db, collection="organisations", log_collection="organisation_revisions")
        self.agency_credentials = db["agency_credentials"]
        self.rejections = db["rejections"]
        self.sweeps = db["sweeps"]
        # Where timers were indexed before the index became the subjects' own timer_day:
        # only read (and emptied) by the timer sweep's adoption of what is left there.
        self.legacy_timers = db["timers"]

    @property
    def stores(self) -> list[Revisions]:
        return [self.referrals, self.transfers, self.agencies, self.cases, self.directory.store]

    async def create_indexes(self) -> None:
        spec: dict[str, list[IndexModel]] = {k: list(v) for k, v in INDEXES.items()}
        for store in self.stores:
            spec.update(store.indexes)
        spec.update(self.directory.indexes)
        await ensure_indexes(self.db, spec)

    async def sweep(self) -> int:
        """Roll forward and publish the revisions crashed writers left unsettled, in every store."""
        return sum([await store.sweep() for store in self.stores])

    @property
    def outbox_collections(self) -> list[AsyncCollection[Document]]:
        return [self.rejections]

    async def insert_rejection(self, doc: Document) -> bool:
        return await insert_once(self.rejections, doc)

    async def rejection_outbox(self, rejection_id: str) -> Document:
        doc = await self.rejections.find_one({"_id": rejection_id}, {"outbox": 1})
        return (doc or {}).get("outbox") or {}

    # -- agencies -----------------------------------------------------------------------
    async def get_agency(self, agency_id: str) -> AgencyDoc | None:
        doc = await self.agencies.get(agency_id)
        return AgencyDoc.model_validate(doc) if doc else None

    async def last_credential_change(self, agency_id: str) -> Document | None:
        """The latest issue, rotation or revocation of an agency's credential."""
        found = (
            await self.agency_credentials.find({"agency_id": agency_id}).sort("seq", -1).limit(1).to_list()
        )
        return found[0] if found else None

    async def claim_credential_change(self, doc: Document) -> bool:
        """Claim change number doc["seq"] of an agency's credential; False if taken."""
        return await insert_once(self.agency_credentials, doc)

    async def list_agencies(self, counties: list[str]) -> list[AgencyDoc]:
        found: list[AgencyDoc] = []
        for county in counties:
            found += [
                AgencyDoc.model_validate(d)
                for d in await self.agencies.docs.find({"county": county}).to_list()
            ]
        return sorted(found, key=lambda a: a.id)

    # -- referrals and transfers: queries of the snapshots ----------------------------------
    async def referrals_in(
        self, county: str, *, status: str | None = None, limit: int = 200
    ) -> list[Document]:
        query: Document = {"county": county}
        if status:
            query["status"] = status
        return await self.referrals.docs.find(query).limit(limit).to_list()

    async def referrals_of_agency(self, agency_id: str, *, limit: int = 200) -> list[Document]:
        return await self.referrals.docs.find({"agency_id": agency_id}).limit(limit).to_list()

    async def referral_ids_for_cases(self, case_ids: list[str]) -> dict[str, list[str]]:
        """Referrals by case (linked at registration, or named by the agency). A few cases:
        two indexed equality lookups each, concurrently; many: one `$in` query, which
        FerretDB answers by scanning the referrals, worth it only when a large batch
        shares it (the scan grows with the collection, the lookups do not)."""
        if not case_ids:
            return {}
        fields = {"case_id": 1, "linked_case_id": 1}
        if len(case_ids) < SCAN_FROM:
            found_lists = await asyncio.gather(
                *(
                    self.referrals.docs.find({key: case_id}, fields).to_list()
                    for case_id in case_ids
                    for key in ("case_id", "linked_case_id")
                )
            )
            docs = [doc for docs in found_lists for doc in docs]
        else:
            wanted = {"$in": case_ids}
            query = {"$or": [{"case_id": wanted}, {"linked_case_id": wanted}]}
            docs = await self.referrals.docs.find(query, fields).to_list()
        found: dict[str, list[str]] = {}
        for doc in docs:
            for case_id in [c for c in case_ids if c in (doc.get("case_id"), doc.get("linked_case_id"))]:
                if doc["_id"] not in found.get(case_id, []):
                    found.setdefault(case_id, []).append(doc["_id"])
        return {case_id: sorted(ids) for case_id, ids in found.items()}

    async def transfer_ids_for_cases(self, case_ids: list[str]) -> dict[str, list[str]]:
        """Transfers by case: indexed lookups for a few cases, one scan for many (as above)."""
        if not case_ids:
            return {}
        if len(case_ids) < SCAN_FROM:
            found_lists = await asyncio.gather(
                *(self.transfers.docs.find({"case_id": c}, {"case_id": 1}).to_list() for c in case_ids)
            )
            docs = [doc for docs in found_lists for doc in docs]
        else:
            docs = await self.transfers.docs.find({"case_id": {"$in": case_ids}}, {"case_id": 1}).to_list()
        found: dict[str, list[str]] = {}
        for doc in docs:
            found.setdefault(doc["case_id"], []).append(doc["_id"])
        return found

    async def overdue_counts(self) -> list[Document]:
        """Open overdue referrals and transfers by county and agency kind."""
        out: list[Document] = []
        for store, kind_field in ((self.referrals, "$agency_kind"), (self.transfers, None)):
            pipeline: list[Document] = [
                {"$match": {"overdue": True}},
                {"$group": {"_id": {"county": "$county", "agency_kind": kind_field}, "n": {"$sum": 1}}},
            ]
            out += await (await store.docs.aggregate(pipeline)).to_list()
        return out

    # -- timers -------------------------------------------------------------------------
    async def on_timer_day(self, store: Revisions, day: date) -> list[Document]:
        """Subjects whose timers the sweep looks at on `day` (an equality lookup)."""
        return await store.docs.find({"timer_day": day.isoformat()}).to_list()

    async def sweep_cursor(self) -> date | None:
        doc = await self.sweeps.find_one({"_id": _CURSOR})
        return date.fromisoformat(doc["day"]) if doc else None

    async def start_sweep_cursor(self, day: date) -> None:
        """The cursor's first value, unless one exists (a unique insert: one wins)."""
        await insert_once(self.sweeps, {"_id": _CURSOR, "day": day.isoformat()})

    async def set_sweep_cursor(self, day: date) -> None:
        # A plain overwrite, not an aggregate: replicas sweeping together compute the same
        # day from the same snapshots, and any of their values is one they all rescan from.
        await upsert_one(self.sweeps, {"_id": _CURSOR}, {"$set": {"day": day.isoformat()}})

    async def legacy_timer_subjects(self, *, limit: int = 500) -> list[tuple[str, str]]:
        """(kind, id) of subjects still indexed in the old timers collection."""
        docs = await self.legacy_timers.find({}, {"subject_kind": 1, "subject_id": 1}).limit(limit).to_list()
        return list(dict.fromkeys((d["subject_kind"], d["subject_id"]) for d in docs))

    async def drop_legacy_timers(self, *, kind: str, subject_id: str) -> None:
        await self.legacy_timers.delete_many({"subject_kind": kind, "subject_id": subject_id})

    # -- the case projection ------------------------------------------------------------
    async def get_case(self, case_id: str) -> CaseView | None:
        """The case as intake described it; None for a case we know nothing of (or only a
        mediator's assignment of: projections written before referral stopped reading the
        registry's assignments could hold that alone)."""
        doc = await self.cases.get(case_id)
        return CaseView.model_validate(doc) if doc and doc.get("county") else None
