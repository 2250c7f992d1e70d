"""Plain Kafka clients for tests: what an agency or a grid system would use."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from devkit.access import admin_for
from tiaojie.runtime.kafka import client_kwargs
from tiaojie.runtime.settings import KafkaCredentials


def _as(bootstrap: str, credentials: KafkaCredentials | None) -> dict[str, Any]:
    return client_kwargs(credentials or admin_for(bootstrap))


async def produce(
    bootstrap: str,
    topic: str,
    values: list[bytes],
    *,
    key: bytes | None = b"k",
    credentials: KafkaCredentials | None = None,
) -> None:
    """Publish as the broker's administrator, or as the principal of `credentials`."""
    producer = AIOKafkaProducer(**_as(bootstrap, credentials), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def read_all(
    bootstrap: str,
    topic: str,
    *,
    expect: int,
    timeout: float = 30,
    credentials: KafkaCredentials | None = None,
) -> list[ConsumerRecord[Any, Any]]:
    """Read a topic from the beginning until `expect` records arrived (or time runs out)."""
    consumer = AIOKafkaConsumer(
        topic,
        **_as(bootstrap, credentials),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[ConsumerRecord[Any, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()
    return records


async def eventually(check: Any, *, timeout: float = 30, interval: float = 0.2) -> Any:
    """Poll an async or sync check until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
