"""Dropping what a test session or a benchmark run created, so the servers stay small."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from devkit.access import admin_kwargs, forget
from tiaojie.runtime.settings import RuntimeSettings


async def drop_namespace(settings: RuntimeSettings) -> None:
    """Drop a namespace's databases, topics, principals and ACLs (best effort: the servers
    may be gone).

    Leftover topics are not free: every metadata refresh of a pattern subscription lists
    every topic on the broker, so stale namespaces cost the services CPU."""
    client: AsyncMongoClient[dict] = AsyncMongoClient(settings.mongo_url, serverSelectionTimeoutMS=3000)
    try:
        for name in await client.list_database_names():
            if name.startswith(f"{settings.namespace}_"):
                await client.drop_database(name)
    except Exception:  # noqa: S110 - cleanup is best effort
        pass
    finally:
        await client.close()
    await forget(settings)
    try:
        admin = AIOKafkaAdminClient(**admin_kwargs(settings.kafka_bootstrap))
    except LookupError:
        return
    try:
        await admin.start()
        mine = [t for t in await admin.list_topics() if t.startswith(f"{settings.namespace}.")]
        if mine:
            await admin.delete_topics(mine)
    except Exception:  # noqa: S110 - cleanup is best effort
        pass
    finally:
        await admin.close()
