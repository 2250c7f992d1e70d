"""The only module that touches the registry's collections; it creates their indexes."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from tiaojie.registry.models import MediatorDoc, OrganisationDoc
from tiaojie.runtime.mongo import Document, ensure_indexes, insert_once

INDEXES = {
    "organisations": [IndexModel([("county", ASCENDING)]), IndexModel([("outbox_pending", ASCENDING)])],
    "mediators": [
        IndexModel([("county", ASCENDING)]),
        IndexModel([("organisation_ids", ASCENDING)]),
        IndexModel([("outbox_pending", ASCENDING)]),
    ],
    "assignments": [IndexModel([("outbox_pending", ASCENDING)])],
}


class RegistryRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.organisations = db["organisations"]
        self.mediators = db["mediators"]
        self.assignments = db["assignments"]

    async def create_indexes(self) -> None:
        await ensure_indexes(self.db, INDEXES)

    # organisations
    async def get_organisation(self, organisation_id: str) -> OrganisationDoc | None:
        doc = await self.organisations.find_one({"_id": organisation_id})
        return OrganisationDoc.model_validate(doc) if doc else None

    async def organisations_in(self, county: str) -> list[OrganisationDoc]:
        return [
            OrganisationDoc.model_validate(d)
            for d in await self.organisations.find({"county": county}).to_list()
        ]

    async def save_organisation(self, organisation_id: str, update: Document) -> Document:
        """Upsert and return the stored document after the update."""
        doc = await self.organisations.find_one_and_update(
            {"_id": organisation_id}, update, upsert=True, return_document=ReturnDocument.AFTER
        )
        assert doc is not None
        return doc

    # mediators
    async def get_mediator(self, mediator_id: str) -> MediatorDoc | None:
        doc = await self.mediators.find_one({"_id": mediator_id})
        return MediatorDoc.model_validate(doc) if doc else None

    async def mediators_of(self, organisation_id: str) -> list[MediatorDoc]:
        docs = await self.mediators.find({"organisation_ids": organisation_id}).to_list()
        return [MediatorDoc.model_validate(d) for d in docs]

    async def save_mediator(self, mediator_id: str, update: Document) -> Document:
        doc = await self.mediators.find_one_and_update(
            {"_id": mediator_id}, update, upsert=True, return_document=ReturnDocument.AFTER
        )
        assert doc is not None
        return doc

    async def add_load(self, mediator_id: str, case_id: str) -> None:
        """Idempotent: a case counts once however often the event is redelivered."""
        await self.mediators.update_one({"_id": mediator_id}, {"$addToSet": {"active_cases": case_id}})

    async def remove_load(self, mediator_id: str, case_id: str) -> None:
        await self.mediators.update_one({"_id": mediator_id}, {"$pull": {"active_cases": case_id}})

    # assignments
    async def get_assignment(self, case_id: str) -> Document | None:
        return await self.assignments.find_one({"_id": case_id})

    async def insert_assignment(self, doc: Document) -> bool:
        return await insert_once(self.assignments, doc)

    async def count(self, collection: str, query: dict[str, Any]) -> int:
        return await self.db[collection].count_documents(query)
