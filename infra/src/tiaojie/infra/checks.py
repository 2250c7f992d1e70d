"""Does a server really answer? (a Kafka metadata request, a MongoDB ping)"""

from __future__ import annotations

import asyncio

from tiaojie.runtime.settings import KafkaCredentials


def kafka_answers(credentials: KafkaCredentials, timeout: float = 5.0) -> bool:
    """True if the cluster answers a metadata request of this principal."""

    async def probe() -> bool:
        import logging

        from aiokafka.admin import AIOKafkaAdminClient

        from tiaojie.runtime.kafka import client_kwargs

        # A refused connection is the expected answer while the broker starts: not an error.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

        admin = AIOKafkaAdminClient(**client_kwargs(credentials), request_timeout_ms=int(timeout * 1000))
        try:
            await asyncio.wait_for(admin.start(), timeout)
            await asyncio.wait_for(admin.list_topics(), timeout)
            return True
        except Exception:
            return False
        finally:
            try:
                await admin.close()
            except Exception:  # noqa: S110 - a failed probe has nothing to close
                pass

    return asyncio.run(probe())


def mongo_answers(url: str, timeout: float = 3.0) -> bool:
    """True if the database answers a ping."""
    from pymongo import MongoClient

    client: MongoClient = MongoClient(
        url, serverSelectionTimeoutMS=int(timeout * 1000), connectTimeoutMS=int(timeout * 1000)
    )
    try:
        client.admin.command("ping")
        return True
    except Exception:
        return False
    finally:
        client.close()
