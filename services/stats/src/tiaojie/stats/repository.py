"""The only module that touches stats' collections; it creates their indexes."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from tiaojie.runtime.mongo import Document, ensure_indexes

INDEXES = {"cases": [IndexModel([("county", ASCENDING)])]}


class StatsRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.cases = db["cases"]

    async def create_indexes(self) -> None:
        await ensure_indexes(self.db, INDEXES)

    async def merge_case(self, case_id: str, fields: dict[str, Any]) -> Document | None:
        """Set facts on a case projection; returns the document as it was before."""
        return await self.cases.find_one_and_update(
            {"_id": case_id}, {"$set": fields}, upsert=True, return_document=ReturnDocument.BEFORE
        )

    async def count(self, query: dict[str, Any]) -> int:
        return await self.cases.count_documents(query)
