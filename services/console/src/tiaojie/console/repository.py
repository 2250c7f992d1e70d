"""The only module touching the console's collections: accounts and sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from tiaojie.console.models import Account, SessionDoc
from tiaojie.runtime.mongo import ensure_indexes, insert_once

Document = dict[str, Any]


class ConsoleRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.accounts = db["accounts"]
        self.sessions = db["sessions"]

    async def create_indexes(self) -> None:
        # Sign-out everywhere looks sessions up by user (equality on an indexed field).
        await ensure_indexes(self.db, {"sessions": [IndexModel("username")]})

    # -- accounts -----------------------------------------------------------------------
    async def get_account(self, username: str) -> Account | None:
        doc = await self.accounts.find_one({"_id": username})
        return Account.model_validate(doc) if doc else None

    async def count_demo_accounts(self) -> int:
        return await self.accounts.count_documents({"demo": True})

    async def insert_account(self, account: Account) -> bool:
        return await insert_once(self.accounts, account.model_dump(by_alias=True))

    async def update_account(self, username: str, fields: Document) -> None:
        await self.accounts.update_one({"_id": username}, {"$set": fields})

    async def count_failed_sign_in(self, username: str) -> int:
        doc = await self.accounts.find_one_and_update(
            {"_id": username},
            {"$inc": {"failed_sign_ins": 1}},
            return_document=ReturnDocument.AFTER,  # FerretDB 1.24 has no projection here
        )
        return int(doc["failed_sign_ins"]) if doc else 0

    # -- sessions -----------------------------------------------------------------------
    async def insert_session(self, session: SessionDoc) -> None:
        await self.sessions.insert_one(session.model_dump(by_alias=True))

    async def get_session(self, session_id: str) -> SessionDoc | None:
        doc = await self.sessions.find_one({"_id": session_id})
        return SessionDoc.model_validate(doc) if doc else None

    async def touch_session(self, session_id: str, at: datetime) -> None:
        await self.sessions.update_one({"_id": session_id}, {"$set": {"last_seen": at}})

    async def delete_session(self, session_id: str) -> None:
        await self.sessions.delete_one({"_id": session_id})

    async def delete_sessions_of(self, username: str) -> int:
        return (await self.sessions.delete_many({"username": username})).deleted_count

    async def delete_stale_sessions(self, *, idle_before: datetime, now: datetime) -> int:
        """Sessions past either limit (the set is small: one per signed-in browser)."""
        result = await self.sessions.delete_many(
            {"$or": [{"last_seen": {"$lt": idle_before}}, {"expires_at": {"$lt": now}}]}
        )
        return result.deleted_count
