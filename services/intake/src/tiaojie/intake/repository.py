"""The only module that touches intake's collections; it creates their indexes.

Every read by a person goes through a county filter: a case of another county is
indistinguishable from a missing one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from tiaojie.intake.models import CaseDoc, OrganisationView
from tiaojie.runtime.mongo import (
    OUTBOX_REV,
    Document,
    ensure_indexes,
    insert_once,
    upsert_versioned,
)

INDEXES = {
    "cases": [
        IndexModel([("tracking_code", ASCENDING)], unique=True),
        IndexModel([("county", ASCENDING)]),
        IndexModel([("outbox_pending", ASCENDING)]),
    ],
    "organisations": [
        IndexModel([("division_code", ASCENDING)]),
        IndexModel([("county", ASCENDING)]),
    ],
}


class IntakeRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.cases = db["cases"]
        self.organisations = db["organisations"]

    async def create_indexes(self) -> None:
        await ensure_indexes(self.db, INDEXES)

    # -- cases ----------------------------------------------------------------------
    async def insert_case(self, doc: Document) -> bool:
        """Insert a new case; False if a case with this id exists (idempotent retry)."""
        return await insert_once(self.cases, doc)

    async def get_case(self, case_id: str) -> CaseDoc | None:
        """A case regardless of county (for internal event handling only)."""
        doc = await self.cases.find_one({"_id": case_id})
        return CaseDoc.model_validate(doc) if doc else None

    async def get_case_raw(self, case_id: str) -> Document | None:
        return await self.cases.find_one({"_id": case_id})

    async def get_case_in(self, case_id: str, counties: Sequence[str]) -> CaseDoc | None:
        """A case, only if it belongs to one of these counties."""
        doc = await self.cases.find_one({"_id": case_id})
        if doc is None or doc.get("county") not in set(counties):
            return None
        return CaseDoc.model_validate(doc)

    async def update_case(self, case_id: str, update: Document) -> Document | None:
        """Apply an update and return the document after it (with its outbox revision)."""
        return await self.cases.find_one_and_update(
            {"_id": case_id}, update, return_document=ReturnDocument.AFTER
        )

    async def outbox_rev(self, case_id: str) -> int:
        doc = await self.cases.find_one({"_id": case_id}, {OUTBOX_REV: 1})
        return int(doc.get(OUTBOX_REV, 0)) if doc else 0

    # -- organisations projection -----------------------------------------------------
    async def upsert_organisation(
        self, *, organisation_id: str, version: int, fields: dict[str, Any]
    ) -> bool:
        return await upsert_versioned(self.organisations, id=organisation_id, version=version, fields=fields)

    async def organisations_at(self, division_code: str) -> list[OrganisationView]:
        docs = await self.organisations.find({"division_code": division_code}).to_list()
        return [OrganisationView.model_validate(d) for d in docs]

    async def organisations_in(self, county: str) -> list[OrganisationView]:
        docs = await self.organisations.find({"county": county}).to_list()
        return [OrganisationView.model_validate(d) for d in docs]

    async def get_organisation(self, organisation_id: str) -> OrganisationView | None:
        doc = await self.organisations.find_one({"_id": organisation_id})
        return OrganisationView.model_validate(doc) if doc else None
