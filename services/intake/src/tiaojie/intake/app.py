"""Composition root of the intake service: broker, routes, lifespan, HTTP app."""

from __future__ import annotations

from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from tiaojie.contracts import topics
from tiaojie.contracts.intake import CaseEvent, CaseNominated, CaseRegistered
from tiaojie.intake.api import router
from tiaojie.intake.classifier import Classifier
from tiaojie.intake.handlers import register_handlers
from tiaojie.intake.metrics import IntakeMetrics
from tiaojie.intake.repository import IntakeRepository
from tiaojie.intake.service import IntakeService
from tiaojie.intake.settings import IntakeSettings
from tiaojie.intake.throttle import Throttle
from tiaojie.runtime.clock import Clock, SystemClock
from tiaojie.runtime.divisions import load_divisions
from tiaojie.runtime.host import ServiceHost
from tiaojie.runtime.pii import Protector


def create_app(settings: IntakeSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    host = ServiceHost(settings, produces=[topics.CASES, topics.LIBRARY_NOMINATIONS])
    repository = IntakeRepository(host.db, publisher=host.publisher, settings=settings)
    classifier = Classifier()
    service = IntakeService(
        repository=repository,
        protector=Protector(
            encryption_key=settings.pii_key.get_secret_value(),
            match_key=settings.match_key.get_secret_value(),
        ),
        divisions=load_divisions(str(settings.divisions_path)),
        settings=settings,
        clock=clock or SystemClock(),
        metrics=IntakeMetrics(host.registry),
        classifier=classifier,
    )
    register_handlers(host.consumer, service)
    host.publisher.declare(
        topics.CASES,
        title="intake.cases.v1",
        description=(
            "The case lifecycle, keyed by case id: CaseRegistered, then CaseEvent subclasses "
            "(CaseAccepted, CaseRejected, CaseAssignmentRecorded, SessionRecorded, CaseResolved, "
            "CaseFailed, AgreementPerformed, FollowUpRecorded, CaseArchived, CaseWithdrawn, "
            "CaseTransferred, DeadlineChanged, DuplicateLinked, RiskRaised)."
        ),
        schema=CaseRegistered | CaseEvent,
    )
    host.publisher.declare(
        topics.LIBRARY_NOMINATIONS,
        title="intake.nominations.v1",
        description="Closed cases nominated for the typical-case library (CaseNominated), keyed by case id.",
        schema=CaseNominated,
    )
    host.on_startup(repository.create_indexes)

    async def warm_classifier() -> None:
        classifier.warm_up()

    host.on_startup(warm_classifier)

    async def reconcile() -> None:
        await service.reconcile_forever(settings.outbox_relay_interval)

    host.background(reconcile)

    async def prune_audit() -> None:
        await service.prune_audit_forever(settings.audit_prune_interval)

    host.background(prune_audit)
    app = host.http_app(
        [router],
        title="Tiaojie intake 案件受理",
        description="Channels in, validation, routing, case numbers, the case lifecycle and file.",
    )
    app.state.intake = service
    app.state.throttle = Throttle(
        limits={"submit": settings.citizen_submission_limit, "track": settings.tracking_limit}
    )
    # The client's address for the limits: X-Forwarded-For counts only from a trusted proxy
    # (none by default); uvicorn's own proxy handling is turned off in __main__.
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
    return app
