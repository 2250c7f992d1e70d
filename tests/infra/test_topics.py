"""Topics are created by the project with partition counts from settings, never auto-created."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from tiaojie.contracts import topics
from tiaojie.runtime.kafka import client_kwargs, ensure_topics
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.integration


async def test_contract_topics_and_dlqs_have_the_configured_partitions(settings: RuntimeSettings) -> None:
    await ensure_topics(settings, topics.ALL_TOPICS)
    admin = AIOKafkaAdminClient(**client_kwargs(settings))
    await admin.start()
    try:
        wanted = [settings.topic(t) for t in topics.ALL_TOPICS] + [
            settings.topic(topics.dlq(t)) for t in topics.ALL_TOPICS
        ]
        described = await admin.describe_topics(wanted)
    finally:
        await admin.close()
    assert {d["topic"]: len(d["partitions"]) for d in described} == dict.fromkeys(wanted, settings.partitions)
    assert await ensure_topics(settings, topics.ALL_TOPICS) == []  # idempotent


async def test_the_broker_does_not_create_topics_on_first_use(settings: RuntimeSettings, unique: str) -> None:
    producer = AIOKafkaProducer(**client_kwargs(settings), request_timeout_ms=3000)
    await producer.start()
    try:
        with pytest.raises(KafkaError):
            await producer.send_and_wait(settings.topic(f"never.created.{unique}"), b"x")
    finally:
        await producer.stop()
