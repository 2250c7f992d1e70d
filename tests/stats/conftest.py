"""The stats service in-process against the real Kafka and FerretDB of the session, with
a manual clock; events are published by a plain producer, as intake, the registry and
referral would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from devkit.access import as_service
from devkit.namespace import drop_namespace
from tests.stats.history import NOW
from tiaojie.contracts import topics
from tiaojie.contracts.envelope import EventData, derived_id, new_event
from tiaojie.runtime.clock import ManualClock
from tiaojie.runtime.kafka import client_kwargs
from tiaojie.runtime.settings import RuntimeSettings
from tiaojie.stats.app import create_app
from tiaojie.stats.settings import StatsSettings


@dataclass
class StatsHarness:
    app: FastAPI
    client: httpx.AsyncClient
    clock: ManualClock
    settings: StatsSettings
    producer: AIOKafkaProducer

    async def publish(self, items: list[tuple[str, str, EventData]], *, salt: str = "") -> None:
        """Publish events keyed like their producers do; ids are deterministic per item,
        so publishing the same list again is a redelivery."""
        for n, (topic, key, data) in enumerate(items):
            event = new_event(
                data,
                # As the topic's producer would: another source is dead-lettered.
                source=topics.service_source(topics.producer_of(topic) or "test"),
                subject=key,
                county=getattr(data, "county", None),
                id=derived_id(f"{salt}{key}", str(n)),
            )
            await self.producer.send(self.settings.topic(topic), event.to_bytes(), key=key.encode())
        await self.producer.flush()

    async def recount_marked(self, case_ids: list[str]) -> bool:
        """True once each of these new cases (one revision each) has its recount mark: the
        service marks a batch's days after writing the batch's projections, so a case can
        be seen before the analytics would count it."""
        ids = [f"{c}#1" for c in case_ids]
        marks = self.service.repo.db["recounts"]
        return await marks.count_documents({"_id": {"$in": ids}}) == len(ids)

    @property
    def service(self) -> Any:
        return self.app.state.stats


@pytest.fixture(scope="session")
async def stats(settings: RuntimeSettings) -> AsyncIterator[StatsHarness]:

    # A namespace of its own: the service reads its topics from the beginning, and the
    # session's topics carry every other test's events by the time these tests run.
    stats_settings = StatsSettings(
        **settings.model_dump(exclude={"service_name", "port", "database_name", "namespace"}),
        namespace=f"{settings.namespace}_st",
        service_name="stats-it",
        database_name="tiaojie_stats_it",
        gauge_interval=1.0,
        kafka_monitor_interval=2.0,
        analytics_hour=23,  # the manual clock stays before it: runs happen only when asked
    )
    stats_settings = stats_settings.model_copy(update=await as_service(stats_settings, "stats"))
    clock = ManualClock(NOW)
    app = create_app(stats_settings, clock=clock)
    producer = AIOKafkaProducer(**client_kwargs(settings), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://stats", timeout=60) as client:
                yield StatsHarness(app, client, clock, stats_settings, producer)
    finally:
        await producer.stop()
        await drop_namespace(stats_settings)
