"""The only module that touches the referral service's collections; it creates their indexes.

FerretDB 1.24 does not make a conditional update atomic: measured, 12 concurrent
`update_one({"_id": x, "state": "pending"}, ...)` let several writers win in 28 of 30
rounds (and their whole-document writes overwrote each other), while a unique insert let
exactly one win in 60 of 60. So every change of a referral or transfer is claimed by
inserting its revision (`<id>#<version>`, the new state and its events: the outbox); the
document in `referrals`/`transfers` is the latest revision, rolled forward by whoever
finds it behind. Two replicas can therefore never both apply a change, fire a timer
twice, or lose each other's writes.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from tiaojie.contracts.envelope import CloudEvent
from tiaojie.referral.models import AgencyDoc, CaseView, OrganisationView
from tiaojie.runtime.mongo import (
    OUTBOX_PENDING,
    Document,
    ensure_indexes,
    insert_once,
    outbox_fields,
    upsert_versioned,
)

INDEXES = {
    "agencies": [IndexModel([("county", ASCENDING)])],
    # One document per issue, rotation or revocation of an agency's broker credential,
    # `<agency>:<seq>`: the unique _id serialises them (and is their audit trail).
    "agency_credentials": [
        IndexModel([("agency_id", ASCENDING), ("seq", ASCENDING)]),
        IndexModel([(OUTBOX_PENDING, ASCENDING)]),
    ],
    "referrals": [
        IndexModel([("county", ASCENDING)]),
        IndexModel([("status", ASCENDING)]),
        IndexModel([("agency_id", ASCENDING)]),
        IndexModel([("case_id", ASCENDING)]),
        IndexModel([("linked_case_id", ASCENDING)]),
        IndexModel([("overdue", ASCENDING)]),
    ],
    "transfers": [
        IndexModel([("case_id", ASCENDING)]),
        IndexModel([("county", ASCENDING)]),
        IndexModel([("overdue", ASCENDING)]),
    ],
    "referral_revisions": [IndexModel([(OUTBOX_PENDING, ASCENDING)])],
    "transfer_revisions": [IndexModel([(OUTBOX_PENDING, ASCENDING)])],
    "timers": [IndexModel([("slot", ASCENDING)])],
    "rejections": [IndexModel([(OUTBOX_PENDING, ASCENDING)])],
    "cases": [IndexModel([("referral_id", ASCENDING)])],
    "organisations": [IndexModel([("county", ASCENDING)]), IndexModel([("parent_id", ASCENDING)])],
}


class VersionedStore:
    """Documents whose every change is a uniquely inserted revision (see module docstring)."""

    def __init__(self, docs: AsyncCollection[Document], revisions: AsyncCollection[Document]) -> None:
        self.docs = docs
        self.revisions = revisions

    async def load(self, subject_id: str) -> Document | None:
        """The latest state: the stored document, rolled forward to the newest revision."""
        doc = await self.docs.find_one({"_id": subject_id})
        version = int(doc["version"]) if doc else 0
        while True:
            newer = await self.revisions.find_one({"_id": f"{subject_id}#{version + 1}"}, {"state": 1})
            if newer is None:
                return doc
            doc = newer["state"]
            version += 1
            await self._write(doc)

    async def commit(self, state: Document, events: list[tuple[str, CloudEvent]], *, at: datetime) -> bool:
        """Claim version `state["version"]` with its events; False if someone else claimed it."""
        revision = {
            "_id": f"{state['_id']}#{state['version']}",
            "subject": state["_id"],
            "at": at,
            "state": state,
            **outbox_fields(events),
        }
        if not await insert_once(self.revisions, revision):
            return False
        await self._write(state)
        return True

    async def _write(self, state: Document) -> None:
        try:
            # Never move a document back to an older version (a slow roll-forward).
            await self.docs.replace_one(
                {"_id": state["_id"], "version": {"$lt": state["version"]}}, state, upsert=True
            )
        except DuplicateKeyError:
            pass  # already at this version or newer

    async def revision_outbox(self, subject_id: str, version: int) -> Document:
        doc = await self.revisions.find_one({"_id": f"{subject_id}#{version}"}, {"outbox": 1})
        return (doc or {}).get("outbox") or {}


class ReferralRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.agencies = db["agencies"]
        self.agency_credentials = db["agency_credentials"]
        self.referrals = VersionedStore(db["referrals"], db["referral_revisions"])
        self.transfers = VersionedStore(db["transfers"], db["transfer_revisions"])
        self.timers = db["timers"]
        self.rejections = db["rejections"]
        self.sweeps = db["sweeps"]
        self.cases = db["cases"]
        self.case_assignments = db["case_assignments"]
        self.organisations = db["organisations"]

    async def create_indexes(self) -> None:
        # One index per command: FerretDB 1.24 panics (and drops the connection) when a
        # createIndexes command with several indexes meets a collection that has them
        # already, i.e. on every restart; one at a time is idempotent.
        for collection, indexes in INDEXES.items():
            for index in indexes:
                await ensure_indexes(self.db, {collection: [index]})

    @property
    def outbox_collections(self) -> list[AsyncCollection[Document]]:
        return [
            self.referrals.revisions,
            self.transfers.revisions,
            self.agencies,
            self.rejections,
            self.agency_credentials,
        ]

    async def insert_rejection(self, doc: Document) -> bool:
        return await insert_once(self.rejections, doc)

    async def rejection_outbox(self, rejection_id: str) -> Document:
        doc = await self.rejections.find_one({"_id": rejection_id}, {"outbox": 1})
        return (doc or {}).get("outbox") or {}

    # -- agencies -----------------------------------------------------------------------
    async def insert_agency(self, doc: Document) -> bool:
        return await insert_once(self.agencies, doc)

    async def get_agency_raw(self, agency_id: str) -> Document | None:
        return await self.agencies.find_one({"_id": agency_id})

    async def get_agency(self, agency_id: str) -> AgencyDoc | None:
        doc = await self.get_agency_raw(agency_id)
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

    async def deactivate_agency(self, agency_id: str) -> None:
        """Mark an agency inactive."""
        await self._set_and_check(agency_id, "active", False)

    async def set_agency_principal(self, agency_id: str, principal: str) -> None:
        """Record the agency's current broker principal (its latest credential's)."""
        await self._set_and_check(agency_id, "kafka_principal", principal)

    async def _set_and_check(self, agency_id: str, field: str, value: Any) -> None:
        # Credential changes are serialised by their claim, but FerretDB may let a
        # concurrent write of the same document (the outbox relay's) overwrite one: so it
        # is read back until it stuck.
        for _ in range(20):
            await self.agencies.update_one({"_id": agency_id}, {"$set": {field: value}})
            doc = await self.agencies.find_one({"_id": agency_id}, {field: 1})
            if doc is None or doc.get(field) == value:
                return
        raise RuntimeError(f"agency {agency_id}: {field} would not stay written")

    async def list_agencies(self, counties: list[str]) -> list[AgencyDoc]:
        found: list[AgencyDoc] = []
        for county in counties:
            found += [
                AgencyDoc.model_validate(d) for d in await self.agencies.find({"county": county}).to_list()
            ]
        return sorted(found, key=lambda a: a.id)

    # -- referrals and transfers: reads scoped by county ----------------------------------
    async def referrals_in(
        self, county: str, *, status: str | None = None, limit: int = 200
    ) -> list[Document]:
        query: Document = {"county": county}
        if status:
            query["status"] = status
        return await self.referrals.docs.find(query).limit(limit).to_list()

    async def referrals_of_agency(self, agency_id: str, *, limit: int = 200) -> list[Document]:
        return await self.referrals.docs.find({"agency_id": agency_id}).limit(limit).to_list()

    async def referral_ids_for_case(self, case_id: str) -> list[str]:
        """Referrals whose case this is (linked at registration, or named by the agency)."""
        ids = [d["_id"] for d in await self.referrals.docs.find({"case_id": case_id}, {"_id": 1}).to_list()]
        ids += [
            d["_id"]
            for d in await self.referrals.docs.find({"linked_case_id": case_id}, {"_id": 1}).to_list()
        ]
        return list(dict.fromkeys(ids))

    async def transfer_ids_for_case(self, case_id: str) -> list[str]:
        docs = await self.transfers.docs.find({"case_id": case_id}, {"_id": 1}).to_list()
        return [d["_id"] for d in docs]

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
    async def schedule(
        self, *, subject_kind: str, subject_id: str, key: str, at: datetime, slot: date
    ) -> None:
        """Index a pending timer under its day (an equality lookup for the sweep)."""
        entry = {
            "subject_kind": subject_kind,
            "subject_id": subject_id,
            "key": key,
            "at": at,
            "slot": slot.isoformat(),
        }
        timer_id = f"{subject_kind}:{subject_id}:{key}"
        try:
            await self.timers.replace_one({"_id": timer_id}, entry, upsert=True)
        except DuplicateKeyError:
            # Another replica inserted it at the same moment: now it exists, replace it.
            await self.timers.replace_one({"_id": timer_id}, entry)

    async def unschedule(self, *, subject_kind: str, subject_id: str, key: str) -> None:
        await self.timers.delete_one({"_id": f"{subject_kind}:{subject_id}:{key}"})

    async def timers_on(self, slot: date) -> list[Document]:
        return await self.timers.find({"slot": slot.isoformat()}).to_list()

    async def sweep_cursor(self) -> date | None:
        doc = await self.sweeps.find_one({"_id": "timers"})
        return date.fromisoformat(doc["day"]) if doc else None

    async def set_sweep_cursor(self, day: date) -> None:
        try:
            await self.sweeps.replace_one({"_id": "timers"}, {"day": day.isoformat()}, upsert=True)
        except DuplicateKeyError:
            await self.sweeps.replace_one({"_id": "timers"}, {"day": day.isoformat()})

    # -- projections --------------------------------------------------------------------
    async def upsert_organisation(self, *, organisation_id: str, version: int, fields: Document) -> bool:
        return await upsert_versioned(self.organisations, id=organisation_id, version=version, fields=fields)

    async def get_organisation(self, organisation_id: str) -> OrganisationView | None:
        doc = await self.organisations.find_one({"_id": organisation_id})
        return OrganisationView.model_validate(doc) if doc else None

    async def organisations_in(self, county: str) -> list[OrganisationView]:
        return [
            OrganisationView.model_validate(d)
            for d in await self.organisations.find({"county": county}).to_list()
        ]

    async def save_case(self, case_id: str, fields: Document) -> None:
        try:
            await self.cases.update_one({"_id": case_id}, {"$set": fields}, upsert=True)
        except DuplicateKeyError:
            await self.cases.update_one({"_id": case_id}, {"$set": fields})

    async def record_assignment(self, case_id: str, organisation_id: str) -> None:
        """A mediator was assigned to the case: its own document, so that no concurrent
        write to the case projection can lose it (see the module docstring)."""
        try:
            await self.case_assignments.replace_one(
                {"_id": case_id}, {"organisation_id": organisation_id}, upsert=True
            )
        except DuplicateKeyError:
            await self.case_assignments.replace_one({"_id": case_id}, {"organisation_id": organisation_id})

    async def assignment_of(self, case_id: str) -> Document | None:
        return await self.case_assignments.find_one({"_id": case_id})

    async def get_case(self, case_id: str) -> CaseView | None:
        doc = await self.cases.find_one({"_id": case_id})
        return CaseView.model_validate(doc) if doc else None

    async def get_case_raw(self, case_id: str) -> Document | None:
        return await self.cases.find_one({"_id": case_id})

    async def count(self, collection: str, query: dict[str, Any]) -> int:
        return await self.db[collection].count_documents(query)
