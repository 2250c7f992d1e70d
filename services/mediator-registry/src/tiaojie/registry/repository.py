"""The only module that touches the registry's collections; it creates their indexes.

Every hot query is an equality on an indexed top-level field (FerretDB pushes only those
down): a mediator's load is `count(holder == id)`, the members of an organisation are
`organisation_ids == id` (multikey), a natural key is `division_code` or `id_number_key`.
Reads on behalf of a person pass the caller's counties: another county's record is
indistinguishable from a missing one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from tiaojie.registry.models import CaseView, DecisionDoc, MediatorDoc, OrganisationDoc
from tiaojie.runtime.mongo import (
    OUTBOX_PENDING,
    Document,
    ensure_indexes,
    insert_once,
    upsert_and_get,
    upsert_one,
)

INDEXES = {
    "organisations": [
        IndexModel([("county", ASCENDING)]),
        IndexModel([("division_code", ASCENDING)]),
        IndexModel([(OUTBOX_PENDING, ASCENDING)]),
    ],
    "mediators": [
        IndexModel([("county", ASCENDING)]),
        IndexModel([("organisation_ids", ASCENDING)]),
        IndexModel([("id_number_key", ASCENDING)]),
        IndexModel([(OUTBOX_PENDING, ASCENDING)]),
    ],
    "history": [IndexModel([("entity_id", ASCENDING)])],
    "cases": [IndexModel([("holder", ASCENDING)])],
    "grants": [IndexModel([("m", ASCENDING)])],
    # Every index costs each write (FerretDB rewrites the whole row, so every index is
    # updated): lookups by case_id use the unique pair's index.
    "decisions": [
        IndexModel([("case_id", ASCENDING), ("seq", ASCENDING)], unique=True),
        IndexModel([(OUTBOX_PENDING, ASCENDING)]),
    ],
}


# A case's projection starts with no decision applied (seq 0) and open.
_NEW_CASE = {"seq": 0}


def _scoped(doc: Document | None, counties: Sequence[str] | None) -> Document | None:
    if doc is None or counties is None:
        return doc
    return doc if doc.get("county") in set(counties) else None


class RegistryRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.organisations = db["organisations"]
        self.mediators = db["mediators"]
        self.history = db["history"]
        self.cases = db["cases"]
        self.decisions = db["decisions"]
        self.grants = db["grants"]

    async def create_indexes(self) -> None:
        await ensure_indexes(self.db, INDEXES)

    # -- versioned entities (organisations, mediators) ----------------------------------
    async def insert_new(self, collection: AsyncCollection[Document], doc: Document) -> bool:
        """Insert version 1; False if the id is taken (a concurrent writer won)."""
        return await insert_once(collection, doc)

    async def update_version(
        self, collection: AsyncCollection[Document], entity_id: str, version: int, update: Document
    ) -> Document | None:
        """Apply an update only if the stored version is still `version`; the document
        after it, or None when another writer got there first."""
        return await collection.find_one_and_update(
            {"_id": entity_id, "version": version}, update, return_document=ReturnDocument.AFTER
        )

    async def raw(self, collection: AsyncCollection[Document], entity_id: str) -> Document | None:
        return await collection.find_one({"_id": entity_id})

    async def record_history(self, entry: Document) -> None:
        """One entry per entity version (a retried write overwrites its own entry)."""
        await self.history.replace_one({"_id": entry["_id"]}, entry, upsert=True)

    async def history_of(self, entity_id: str, *, up_to_version: int) -> list[Document]:
        docs = await self.history.find({"entity_id": entity_id}).to_list()
        kept = [d for d in docs if d.get("version", 0) <= up_to_version]
        return sorted(kept, key=lambda d: d["version"], reverse=True)

    # -- organisations ---------------------------------------------------------------------
    async def get_organisation(
        self, organisation_id: str, *, counties: Sequence[str] | None = None
    ) -> OrganisationDoc | None:
        doc = _scoped(await self.organisations.find_one({"_id": organisation_id}), counties)
        return OrganisationDoc.model_validate(doc) if doc else None

    async def organisations_in(self, county: str) -> list[OrganisationDoc]:
        docs = await self.organisations.find({"county": county}).to_list()
        return sorted((OrganisationDoc.model_validate(d) for d in docs), key=lambda o: o.id)

    async def organisations_at(self, division_code: str) -> list[OrganisationDoc]:
        docs = await self.organisations.find({"division_code": division_code}).to_list()
        return [OrganisationDoc.model_validate(d) for d in docs]

    async def counties(self) -> list[str]:
        """Every county that has an organisation."""
        rows = await (await self.organisations.aggregate([{"$group": {"_id": "$county"}}])).to_list()
        return sorted(str(r["_id"]) for r in rows if r.get("_id"))

    # -- mediators ---------------------------------------------------------------------------
    async def get_mediator(
        self, mediator_id: str, *, counties: Sequence[str] | None = None
    ) -> MediatorDoc | None:
        doc = _scoped(await self.mediators.find_one({"_id": mediator_id}), counties)
        return MediatorDoc.model_validate(doc) if doc else None

    async def mediator_by_key(self, id_number_key: str) -> MediatorDoc | None:
        doc = await self.mediators.find_one({"id_number_key": id_number_key})
        return MediatorDoc.model_validate(doc) if doc else None

    async def mediators_of(self, organisation_id: str) -> list[MediatorDoc]:
        docs = await self.mediators.find({"organisation_ids": organisation_id}).to_list()
        return sorted((MediatorDoc.model_validate(d) for d in docs), key=lambda m: m.id)

    async def mediators_in(self, county: str) -> list[MediatorDoc]:
        docs = await self.mediators.find({"county": county}).to_list()
        return sorted((MediatorDoc.model_validate(d) for d in docs), key=lambda m: m.id)

    async def member_ids(self, organisation_id: str) -> list[str]:
        docs = await self.mediators.find({"organisation_ids": organisation_id}, {"_id": 1}).to_list()
        return sorted(str(d["_id"]) for d in docs)

    # -- load and fairness -------------------------------------------------------------------
    async def load(self, mediator_id: str) -> int:
        """Open cases a mediator holds now."""
        return await self.cases.count_documents({"holder": mediator_id})

    async def record_grant(self, mediator_id: str, *, day: date, case_id: str) -> None:
        """Count a case given to a mediator on a day. One small document per grant with a
        deterministic id: inserts are atomic where concurrent updates of one shared
        counter are not (FerretDB 1.24), and a redelivery inserts nothing."""
        await insert_once(
            self.grants,
            {"_id": f"{mediator_id}|{case_id}|{day.isoformat()}", "m": mediator_id, "day": day.isoformat()},
        )

    async def recent_assignments(self, mediator_id: str, *, since: date) -> int:
        """Cases given to a mediator since a day (the fairness window)."""
        return await self.grants.count_documents({"m": mediator_id, "day": {"$gte": since.isoformat()}})

    async def forget_grants(self, *, before: date) -> int:
        """Drop grants older than any fairness window still asked about."""
        done = await self.grants.delete_many({"day": {"$lt": before.isoformat()}})
        return done.deleted_count

    # -- case projection ---------------------------------------------------------------------
    async def get_case(self, case_id: str, *, counties: Sequence[str] | None = None) -> CaseView | None:
        doc = _scoped(await self.cases.find_one({"_id": case_id}), counties)
        return CaseView.model_validate(doc) if doc else None

    async def remember_case(self, case_id: str, fields: Document) -> Document:
        """Record what assignment needs to know about a case (idempotent); returns the
        projection as written, in the same round trip."""
        return await upsert_and_get(self.cases, {"_id": case_id}, {"$set": fields, "$setOnInsert": _NEW_CASE})

    async def next_decision(
        self, case_id: str, *, scan: bool = False, known: Document | None = None
    ) -> CaseView:
        """The case's projection (created if new) with the number its next decision takes.

        FerretDB 1.24 does not apply concurrent updates of one document atomically (200
        concurrent $inc on one document were measured to add 29), so the number is not a
        counter: the unique (case_id, seq) index makes a writer that took a number already
        taken retry. The first guess is one more than the decision the case shows; a
        decision stored but not yet applied makes that guess taken, and the retry (`scan`)
        takes one more than the highest decision. Numbers are never deleted and each is at
        most one more than the highest, so a free guess is the same number a scan gives.
        `known` is the projection as the caller just wrote it (saves reading it again)."""
        doc = known if known is not None and not scan else await self.cases.find_one({"_id": case_id})
        if doc is None:
            doc = await upsert_and_get(self.cases, {"_id": case_id}, {"$setOnInsert": _NEW_CASE})
        highest = int(doc.get("seq", 0))
        if scan:
            found = await self.decisions.find({"case_id": case_id}, {"seq": 1}).to_list()
            highest = max([highest, *(int(d.get("seq", 0)) for d in found)])
        return CaseView.model_validate({**doc, "next_seq": highest + 1})

    async def apply_decision(self, case_id: str, seq: int, fields: Document, *, holder: str | None) -> bool:
        """Make a decision the case's current one unless a later decision already is.

        The holder is set in the same write only while the case is open, so a case that
        closed meanwhile never counts towards anyone's load."""
        base = {"_id": case_id, "seq": {"$lt": seq}}
        done = await self.cases.update_one(
            {**base, "closed": {"$ne": True}}, {"$set": {**fields, "seq": seq, "holder": holder}}
        )
        if done.matched_count:
            return True
        late = await self.cases.update_one(base, {"$set": {**fields, "seq": seq, "holder": None}})
        return bool(late.matched_count)

    async def close_case(self, case_id: str, fields: Document) -> None:
        """The case ended: nobody holds it any more (idempotent)."""
        await upsert_one(
            self.cases,
            {"_id": case_id},
            {"$set": {**fields, "closed": True, "holder": None}, "$setOnInsert": {"seq": 0}},
        )

    async def release_case(self, case_id: str, *, new_organisation_id: str, fields: Document) -> bool:
        """The case moved to another organisation before it was reassigned there."""
        done = await self.cases.update_one(
            {"_id": case_id, "organisation_id": {"$ne": new_organisation_id}},
            {"$set": {**fields, "organisation_id": new_organisation_id, "holder": None, "mediator_id": None}},
        )
        return bool(done.modified_count)

    # -- decisions -----------------------------------------------------------------------------
    async def get_decision(self, decision_id: str) -> Document | None:
        return await self.decisions.find_one({"_id": decision_id})

    async def insert_decision(self, doc: Document) -> str:
        """inserted; exists (this decision was stored before); or seq_taken (a concurrent
        decision of the same case took the number: compute it again)."""
        try:
            await self.decisions.insert_one(doc)
            return "inserted"
        except DuplicateKeyError:
            return "exists" if await self.decisions.find_one({"_id": doc["_id"]}, {"_id": 1}) else "seq_taken"

    async def decisions_of(self, case_id: str) -> list[DecisionDoc]:
        docs = await self.decisions.find({"case_id": case_id}).to_list()
        return sorted((DecisionDoc.model_validate(d) for d in docs), key=lambda d: d.seq)

    async def count(self, collection: str, query: dict[str, Any]) -> int:
        return await self.db[collection].count_documents(query)
