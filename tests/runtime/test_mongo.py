"""The database helpers against the real FerretDB: the races they exist for."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from tiaojie.runtime.mongo import insert_once, make_client, upsert_one
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.integration


@pytest.fixture
async def db(settings: RuntimeSettings, unique: str) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url)
    database = client[settings.database(f"mongo_{unique}")]
    try:
        yield database
    finally:
        await client.drop_database(database.name)
        await client.close()


async def test_concurrent_upserts_of_one_new_document_all_succeed(db: AsyncDatabase[dict[str, Any]]) -> None:
    links = db["links"]
    await links.insert_one({"_id": "other"})  # the collection exists, as after start-up

    async def link(n: int) -> None:
        await upsert_one(links, {"_id": "case-1"}, {"$setOnInsert": {"by": n}, "$inc": {"seen": 0}})

    await asyncio.gather(*(link(n) for n in range(10)))
    docs = await links.find({"_id": "case-1"}).to_list()
    assert len(docs) == 1 and docs[0]["by"] in range(10)


async def test_insert_once_lets_exactly_one_of_many_concurrent_writers_win(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    claims = db["claims"]
    await claims.insert_one({"_id": "other"})
    for round_no in range(5):
        won = await asyncio.gather(*(insert_once(claims, {"_id": f"c{round_no}", "n": n}) for n in range(10)))
        assert won.count(True) == 1


async def test_a_client_counts_its_commands_by_collection(settings: RuntimeSettings, unique: str) -> None:
    registry = CollectorRegistry()
    client = make_client(settings, app_name="test", registry=registry)
    db = client[settings.database(f"count_{unique}")]
    try:
        await db["cases"].insert_one({"_id": "c1"})
        await db["cases"].update_one({"_id": "c1"}, {"$set": {"x": 1}})
        await db["cases"].find_one({"_id": "c1"})
        await db["cases"].find_one({"_id": "c2"})
        await db["links"].find_one({"_id": "l1"})

        def sent(command: str, collection: str) -> float | None:
            labels = {"command": command, "collection": collection}
            return registry.get_sample_value("tiaojie_db_commands_total", labels)

        assert sent("insert", "cases") == 1
        assert sent("update", "cases") == 1
        assert sent("find", "cases") == 2
        assert sent("find", "links") == 1
    finally:
        await client.drop_database(db.name)
        await client.close()
