"""A registry app per test module: real Kafka and FerretDB, its own database, a manual clock.

The app runs its real lifespan (topics, indexes, broker, consumer, outbox relay); tests
call its HTTP API through an in-process transport and its services directly.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from devkit.access import as_service
from devkit.namespace import drop_namespace
from tests.support.data import auth
from tiaojie.contracts.common import Role
from tiaojie.registry.app import create_app
from tiaojie.registry.assignment import AssignmentService
from tiaojie.registry.recovery import Recovery
from tiaojie.registry.service import RegistryService
from tiaojie.registry.settings import RegistrySettings
from tiaojie.runtime.clock import ManualClock
from tiaojie.runtime.settings import RuntimeSettings

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class RegistryHarness:
    app: FastAPI
    settings: RegistrySettings
    clock: ManualClock
    http: httpx.AsyncClient

    @property
    def service(self) -> RegistryService:
        return self.app.state.registry

    @property
    def assignments(self) -> AssignmentService:
        return self.app.state.assignments

    def headers(
        self, role: Role = Role.BUREAU, counties: list[str] | None = None, **claims: Any
    ) -> dict[str, str]:
        return auth(self.settings, role, counties, **claims)


def registry_settings(settings: RuntimeSettings, **overrides: Any) -> RegistrySettings:
    """Settings of an in-process registry with topics, group and database of its own: a
    sub-namespace of the session's, so the session's mesh (if running) never shares its
    consumer group or reads its events."""
    return RegistrySettings.model_validate(
        {
            **settings.model_dump(),
            "namespace": f"{settings.namespace}_r{uuid.uuid4().hex[:6]}",
            "database_name": "tiaojie_registry",
            "log_json": False,
            **overrides,
        }
    )


@pytest.fixture(scope="module")
async def registry(settings: RuntimeSettings) -> AsyncIterator[RegistryHarness]:
    s = registry_settings(settings)
    s = s.model_copy(update=await as_service(s, "registry"))
    clock = ManualClock(START)
    app = create_app(s, clock=clock)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://registry", timeout=60) as http:
                yield RegistryHarness(app=app, settings=s, clock=clock, http=http)
    finally:
        await drop_namespace(s)


@dataclass
class World:
    """Fresh registry rules on a database of their own, sharing the module app's broker."""

    service: RegistryService
    assignments: AssignmentService
    recovery: Recovery
    clock: ManualClock
    settings: RegistrySettings


async def make_world(
    registry: RegistryHarness,
    *,
    database: str | None = None,
    clock: ManualClock | None = None,
    mongo: Any = None,
    **overrides: Any,
) -> World:
    """Registry rules on a database of their own, or on `database` (another replica of a
    world: its own objects, the same data); `mongo` is another client to use (e.g. one
    that counts commands)."""
    from prometheus_client import CollectorRegistry

    from tiaojie.registry.metrics import RegistryMetrics
    from tiaojie.registry.repository import RegistryRepository
    from tiaojie.runtime.pii import Protector

    host = registry.app.state.host
    settings = registry.settings.model_copy(update=overrides)
    name = database or settings.database(f"tiaojie_registry_{uuid.uuid4().hex[:8]}")
    repository = RegistryRepository((mongo or host.mongo)[name], publisher=host.publisher, settings=settings)
    await repository.create_indexes()
    clock = clock or ManualClock(START)
    metrics = RegistryMetrics(CollectorRegistry())
    service = RegistryService(
        repository=repository,
        protector=Protector(
            encryption_key=settings.pii_key.get_secret_value(),
            match_key=settings.match_key.get_secret_value(),
        ),
        divisions=registry.service.divisions,
        settings=settings,
        clock=clock,
        metrics=metrics,
    )
    assignments = AssignmentService(repository=repository, settings=settings, clock=clock, metrics=metrics)
    recovery = Recovery(
        repository=repository,
        assignments=assignments,
        publisher=host.publisher,
        settings=settings,
        clock=clock,
    )
    return World(service=service, assignments=assignments, recovery=recovery, clock=clock, settings=settings)


async def replica_of(registry: RegistryHarness, world: World) -> World:
    """A second registry process on the same database as `world` (as `--replicas registry=2`
    runs): nothing in memory shared, the clock alike."""
    return await make_world(registry, database=world.service.repo.db.name, clock=world.clock)
