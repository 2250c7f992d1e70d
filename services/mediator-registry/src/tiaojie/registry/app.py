"""Composition root of the mediator-registry service."""

from __future__ import annotations

from fastapi import FastAPI

from tiaojie.contracts import topics
from tiaojie.contracts.registry import MediatorAssigned, MediatorUpdated, OrganisationUpdated
from tiaojie.registry.api import router
from tiaojie.registry.handlers import register_handlers
from tiaojie.registry.metrics import RegistryMetrics
from tiaojie.registry.repository import RegistryRepository
from tiaojie.registry.service import RegistryService
from tiaojie.registry.settings import RegistrySettings
from tiaojie.runtime.clock import Clock, SystemClock
from tiaojie.runtime.host import ServiceHost
from tiaojie.runtime.mongo import OutboxRelay
from tiaojie.runtime.pii import Protector


def create_app(settings: RegistrySettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or RegistrySettings()
    host = ServiceHost(settings, produces=[topics.ORGANISATIONS, topics.MEDIATORS, topics.ASSIGNMENTS])
    repository = RegistryRepository(host.db)
    relay = OutboxRelay(
        publisher=host.publisher,
        settings=settings,
        collections=[repository.organisations, repository.mediators, repository.assignments],
    )
    service = RegistryService(
        repository=repository,
        relay=relay,
        protector=Protector(
            encryption_key=settings.pii_key.get_secret_value(),
            match_key=settings.match_key.get_secret_value(),
        ),
        settings=settings,
        clock=clock or SystemClock(),
        metrics=RegistryMetrics(host.registry),
    )
    register_handlers(host.consumer, service)
    for topic, model, text in (
        (topics.ORGANISATIONS, OrganisationUpdated, "Organisation snapshots, keyed by organisation id."),
        (
            topics.MEDIATORS,
            MediatorUpdated,
            "Mediator snapshots without personal data, keyed by mediator id.",
        ),
        (topics.ASSIGNMENTS, MediatorAssigned, "Assignment decisions with reasons, keyed by case id."),
    ):
        host.publisher.declare(topic, title=topic, description=text, schema=model)
    host.on_startup(repository.create_indexes)
    host.background(relay.run_forever)
    app = host.http_app(
        [router],
        title="Tiaojie mediator registry 调解组织与调解员",
        description="Organisations and mediators, grades, certificates, capacity; who gets which case.",
    )
    app.state.registry = service
    return app
