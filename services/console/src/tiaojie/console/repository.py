"""The only module touching the console's collections: accounts, sessions and failed
sign-ins."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from tiaojie.console.models import Account, SessionDoc, SignInAttempt
from tiaojie.runtime.mongo import ensure_indexes, insert_once

Document = dict[str, Any]


class ConsoleRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.accounts = db["accounts"]
        self.sessions = db["sessions"]
        self.attempts = db["sign_in_attempts"]

    async def create_indexes(self) -> None:
        # Sign-out everywhere looks sessions up by user, throttling counts attempts by
        # account and by address (equality on an indexed field).
        await ensure_indexes(
            self.db,
            {
                "sessions": [IndexModel("username")],
                "sign_in_attempts": [IndexModel("username"), IndexModel("address")],
            },
        )

    # -- accounts -----------------------------------------------------------------------
    async def get_account(self, username: str) -> Account | None:
        doc = await self.accounts.find_one({"_id": username})
        return Account.model_validate(doc) if doc else None

    async def count_demo_accounts(self) -> int:
        return await self.accounts.count_documents({"demo": True})

    async def insert_account(self, account: Account) -> bool:
        return await insert_once(self.accounts, account.model_dump(by_alias=True))

    async def update_account(self, username: str, fields: Document) -> bool:
        """Set fields of an account; False if there is none."""
        return (await self.accounts.update_one({"_id": username}, {"$set": fields})).matched_count > 0

    # -- sign-in attempts ---------------------------------------------------------------
    async def insert_attempt(self, attempt: SignInAttempt) -> None:
        await self.attempts.insert_one(attempt.model_dump(by_alias=True))

    async def delete_attempt(self, attempt_id: str) -> None:
        await self.attempts.delete_one({"_id": attempt_id})

    async def forget_attempts(self, *, username: str, address: str) -> None:
        """A success from an address clears that address's failures for the account."""
        await self.attempts.delete_many({"username": username, "address": address})

    async def attempts_since(
        self, *, since: datetime, exclude: str, username: str | None = None, address: str | None = None
    ) -> tuple[int, datetime | None]:
        """How many attempts match (other than `exclude`) since then, and the latest."""
        query: Document = {"at": {"$gte": since}, "_id": {"$ne": exclude}}
        if username is not None:
            query["username"] = username
        if address is not None:
            query["address"] = address
        count = await self.attempts.count_documents(query)
        if not count:
            return 0, None
        latest = await self.attempts.find_one(query, sort=[("at", DESCENDING)])
        return count, (latest["at"] if latest else None)

    async def nth_oldest_attempt(
        self, *, address: str, since: datetime, exclude: str, skip: int
    ) -> datetime | None:
        """The time of an address's attempt at this position from the oldest (Retry-After)."""
        query: Document = {"address": address, "at": {"$gte": since}, "_id": {"$ne": exclude}}
        async for doc in self.attempts.find(query).sort("at", ASCENDING).skip(skip).limit(1):
            return doc["at"]
        return None

    async def delete_attempts_before(self, before: datetime) -> int:
        return (await self.attempts.delete_many({"at": {"$lt": before}})).deleted_count

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
