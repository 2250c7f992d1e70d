"""Composition root of the mediator-registry service."""

from __future__ import annotations

from fastapi import FastAPI

from tiaojie.contracts import topics
from tiaojie.contracts.registry import MediatorAssigned, MediatorUpdated, OrganisationUpdated
from tiaojie.registry.api import router
from tiaojie.registry.assignment import AssignmentService
from tiaojie.registry.handlers import register_handlers
from tiaojie.registry.importing import RosterImporter
from tiaojie.registry.metrics import RegistryMetrics
from tiaojie.registry.recovery import Recovery
from tiaojie.registry.repository import RegistryRepository
from tiaojie.registry.service import RegistryService
from tiaojie.registry.settings import RegistrySettings
from tiaojie.runtime.clock import Clock, SystemClock
from tiaojie.runtime.divisions import load_divisions
from tiaojie.runtime.host import ServiceHost
from tiaojie.runtime.pii import Protector


def create_app(settings: RegistrySettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or RegistrySettings()
    clock = clock or SystemClock()
    host = ServiceHost(settings, produces=[topics.ORGANISATIONS, topics.MEDIATORS, topics.ASSIGNMENTS])
    repository = RegistryRepository(host.db, publisher=host.publisher, settings=settings)
    metrics = RegistryMetrics(host.registry)
    service = RegistryService(
        repository=repository,
        protector=Protector(
            encryption_key=settings.pii_key.get_secret_value(),
            match_key=settings.match_key.get_secret_value(),
        ),
        divisions=load_divisions(str(settings.divisions_path)),
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
    register_handlers(host.consumer, assignments)
    for topic, model, text in (
        (topics.ORGANISATIONS, OrganisationUpdated, "Organisation snapshots, keyed by organisation id."),
        (
            topics.MEDIATORS,
            MediatorUpdated,
            "Mediator snapshots without personal data, keyed by mediator id.",
        ),
        (
            topics.ASSIGNMENTS,
            MediatorAssigned,
            "Assignment decisions with reasons (MediatorAssigned, AssignmentFailed), keyed by case id.",
        ),
    ):
        host.publisher.declare(topic, title=topic, description=text, schema=model)
    host.on_startup(repository.create_indexes)
    # Before the consumer starts: the rules assume the data the engine writes.
    host.on_startup(recovery.migrate)
    host.background(recovery.run_sweeps)
    host.background(recovery.run_audits)
    host.background(service.run_gauges)
    app = host.http_app(
        [router],
        title="Tiaojie mediator registry 调解组织与调解员",
        description="Organisations and mediators, grades, certificates, training, discipline, capacity; "
        "roster imports; compliance; who gets which case and why.",
    )
    app.state.registry = service
    app.state.assignments = assignments
    app.state.recovery = recovery
    app.state.importer = RosterImporter(service, max_rows=settings.import_max_rows)
    return app
