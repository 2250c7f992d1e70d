"""The only module that touches the registry's collections; it creates their indexes.

Organisations, mediators, cases and mediators' load ledgers are aggregates of the storage
engine (`tiaojie.runtime.revisions`): their collections hold snapshots, and every change
is a revision claimed by a unique insert in `<collection>_revisions`. History entries and
decision records are audit facts with deterministic ids, inserted once.

Every hot query is an equality on an indexed top-level field (FerretDB pushes only those
down): the members of an organisation are `organisation_ids == id` (multikey), a natural
key is `division_code` or `id_number_key`. Reads on behalf of a person pass the caller's
counties: another county's record is indistinguishable from a missing one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, OperationFailure

from tiaojie.registry.ledger import cases_held, received
from tiaojie.registry.models import CaseView, DecisionDoc, MediatorDoc, OrganisationDoc
from tiaojie.runtime.kafka import EventPublisher
from tiaojie.runtime.mongo import Document, ensure_indexes, insert_once
from tiaojie.runtime.revisions import Revisions
from tiaojie.runtime.settings import RuntimeSettings

INDEXES = {
    "organisations": [
        IndexModel([("county", ASCENDING)]),
        IndexModel([("division_code", ASCENDING)]),
    ],
    "mediators": [
        IndexModel([("county", ASCENDING)]),
        IndexModel([("organisation_ids", ASCENDING)]),
        IndexModel([("id_number_key", ASCENDING)]),
    ],
    "history": [IndexModel([("entity_id", ASCENDING)])],
    # Every index costs each write (FerretDB rewrites the whole row, so every index is
    # updated): lookups by case_id use the unique pair's index.
    "decisions": [IndexModel([("case_id", ASCENDING), ("seq", ASCENDING)], unique=True)],
}
_DUPLICATE = 11000
# Written once the data of the registry before the storage engine is converted.
MIGRATED = "storage-engine-v1"


def _scoped(doc: Document | None, counties: Sequence[str] | None) -> Document | None:
    if doc is None or counties is None:
        return doc
    return doc if doc.get("county") in set(counties) else None


class RegistryRepository:
    def __init__(
        self,
        db: AsyncDatabase[Document],
        *,
        publisher: EventPublisher | None = None,
        settings: RuntimeSettings | None = None,
    ) -> None:
        self.db = db

        def store(name: str) -> Revisions:
            return Revisions(db, name, publisher=publisher, settings=settings)

        self.organisation_store = store("organisations")
        self.mediator_store = store("mediators")
        self.case_store = store("cases")
        self.load_store = store("loads")
        self.organisations = self.organisation_store.docs
        self.mediators = self.mediator_store.docs
        self.cases = self.case_store.docs
        self.loads = self.load_store.docs
        self.history = db["history"]
        self.decisions = db["decisions"]
        self.meta = db["meta"]

    @property
    def stores(self) -> list[Revisions]:
        return [self.organisation_store, self.mediator_store, self.case_store, self.load_store]

    async def create_indexes(self) -> None:
        spec: dict[str, list[IndexModel]] = {k: list(v) for k, v in INDEXES.items()}
        for store in self.stores:
            for collection, indexes in store.indexes.items():
                spec.setdefault(collection, []).extend(indexes)
        await ensure_indexes(self.db, spec)

    # -- audit facts ----------------------------------------------------------------------
    async def _insert_all(self, collection: AsyncCollection[Document], docs: Sequence[Document]) -> None:
        """Insert documents with deterministic ids; those already there are left as they are."""
        unique = list({d["_id"]: d for d in docs}.values())
        if len(unique) == 1:
            await insert_once(collection, unique[0])
            return
        if not unique:
            return
        try:
            await collection.insert_many(unique, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != _DUPLICATE for e in exc.details.get("writeErrors", [])):
                raise

    async def record_history(self, entries: Sequence[Document]) -> None:
        """One entry per entity version (the entity's state carries the entry of its version)."""
        await self._insert_all(self.history, entries)

    async def history_of(self, entity_id: str, *, latest: Document | None) -> list[Document]:
        """The history up to `latest`, the entity's snapshot (whose own entry may not be
        recorded yet if its writer crashed), newest first."""
        version = int((latest or {}).get("version", 0))
        docs = await self.history.find({"entity_id": entity_id}).to_list()
        kept = {d["version"]: d for d in docs if d.get("version", 0) <= version}
        change = (latest or {}).get("change")
        if change and change.get("version") not in kept:
            kept[change["version"]] = change
        return [kept[v] for v in sorted(kept, reverse=True)]

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

    # -- load ledgers ------------------------------------------------------------------------
    async def load(self, mediator_id: str) -> int:
        """Open cases a mediator holds now."""
        return len(cases_held(await self.load_store.get(mediator_id)))

    async def recent_assignments(self, mediator_id: str, *, since: date) -> int:
        """Cases given to a mediator since a day (the fairness window)."""
        return received(await self.load_store.get(mediator_id), since=since)

    async def ledgers(self) -> list[Document]:
        """Every mediator's load ledger (small documents; read by the periodic audit)."""
        return await self.loads.find({}).to_list()

    # -- cases and decisions ---------------------------------------------------------------------
    async def get_case(self, case_id: str, *, counties: Sequence[str] | None = None) -> CaseView | None:
        doc = _scoped(await self.case_store.get(case_id), counties)
        return CaseView.model_validate(doc) if doc else None

    async def record_decisions(self, docs: Sequence[Document]) -> None:
        """The audit record of each decision (the case's state carries its latest one)."""
        await self._insert_all(self.decisions, docs)

    async def get_decision(self, decision_id: str) -> Document | None:
        return await self.decisions.find_one({"_id": decision_id})

    async def decisions_of(self, case_id: str) -> list[DecisionDoc]:
        """Every decision of a case, oldest first (the latest from the case itself if its
        record is not written yet)."""
        docs = {d["_id"]: d for d in await self.decisions.find({"case_id": case_id}).to_list()}
        latest = ((await self.case_store.get(case_id)) or {}).get("decision")
        if latest and latest["_id"] not in docs:
            docs[latest["_id"]] = latest
        return sorted((DecisionDoc.model_validate(d) for d in docs.values()), key=lambda d: d.seq)

    # -- before the storage engine ---------------------------------------------------------------
    async def migrated(self) -> bool:
        return await self.meta.find_one({"_id": MIGRATED}) is not None

    async def mark_migrated(self) -> None:
        await insert_once(self.meta, {"_id": MIGRATED, "at": datetime.now(UTC)})

    async def unversioned_cases(self) -> list[Document]:
        """Case projections written before cases were aggregates (they have no version)."""
        return await self.cases.find({"version": {"$exists": False}}).to_list()

    async def adopt_case(self, case_id: str, *, applied: list[str]) -> None:
        """Give an old projection version 0 and the ids of its decisions, so that the engine
        continues it (its first revision is then version 1) and redeliveries stay no-ops."""
        await self.cases.update_one(
            {"_id": case_id, "version": {"$exists": False}}, {"$set": {"version": 0, "applied": applied}}
        )

    async def decision_ids_of(self, case_id: str) -> list[str]:
        docs = await self.decisions.find({"case_id": case_id}, {"_id": 1, "seq": 1}).to_list()
        return [str(d["_id"]) for d in sorted(docs, key=lambda d: d.get("seq", 0))]

    async def old_grants(self, *, since: date) -> list[Document]:
        """Grants the registry counted fairness from before ledgers existed."""
        return await self.db["grants"].find({"day": {"$gte": since.isoformat()}}).to_list()

    async def drop_old_indexes(self) -> None:
        """Indexes the registry declared before the engine and no longer queries (every
        index costs each write)."""
        old = [(c, "outbox_pending_1") for c in (self.organisations, self.mediators, self.decisions)]
        for collection, name in [*old, (self.cases, "holder_1")]:
            try:
                await collection.drop_index(name)
            except OperationFailure:
                pass  # not there: a database created after the engine

    def old_outboxes(self) -> list[AsyncCollection[Document]]:
        """Collections whose documents carried their own outbox before the storage engine."""
        return [self.organisations, self.mediators, self.decisions]
