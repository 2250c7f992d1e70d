"""Composition root of the stats service."""

from __future__ import annotations

from fastapi import FastAPI

from tiaojie.contracts import topics
from tiaojie.contracts.stats import HotspotRaised
from tiaojie.runtime.clock import Clock, SystemClock
from tiaojie.runtime.divisions import Divisions, DivisionsMissing, load_divisions
from tiaojie.runtime.host import ServiceHost
from tiaojie.runtime.logging import get_logger
from tiaojie.runtime.mongo import sweep_forever
from tiaojie.stats.analytics import Analytics
from tiaojie.stats.api import router
from tiaojie.stats.handlers import register_handlers
from tiaojie.stats.kafka_monitor import KafkaMonitor
from tiaojie.stats.metrics import StatsMetrics
from tiaojie.stats.reports import ReportBuilder
from tiaojie.stats.repository import StatsRepository
from tiaojie.stats.service import StatsService
from tiaojie.stats.settings import StatsSettings

log = get_logger(__name__)


def create_app(settings: StatsSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or StatsSettings()
    clock = clock or SystemClock()
    host = ServiceHost(settings, produces=[topics.ALERTS])
    repository = StatsRepository(host.db, publisher=host.publisher, settings=settings)
    metrics = StatsMetrics(host.registry)
    service = StatsService(repository=repository, metrics=metrics, clock=clock, settings=settings)
    analytics = Analytics(repository=repository, service=service, clock=clock, settings=settings)
    register_handlers(host.consumer, service)
    host.publisher.declare(
        topics.ALERTS,
        title="stats.alerts.v1",
        description="Hotspot (HotspotRaised, HotspotCleared) and individual-risk alerts "
        "(RiskAlertRaised, RiskAlertCleared), keyed by alert id.",
        schema=HotspotRaised,
    )
    host.on_startup(repository.create_indexes)

    async def sweep_revisions() -> None:
        # Revisions a crashed writer left unsettled: snapshots rolled forward, alert events published.
        await sweep_forever(repository.sweep, settings.outbox_relay_interval, what="stats revisions sweep")

    async def gauges_forever() -> None:
        await sweep_forever(service.refresh_gauges, settings.gauge_interval, what="gauge refresh")

    host.background(sweep_revisions)
    host.background(analytics.run_forever)
    host.background(KafkaMonitor(settings, metrics, settings.kafka_monitor_interval).run_forever)
    host.background(gauges_forever)
    app = host.http_app(
        [router],
        title="Tiaojie stats 统计与预警",
        description="Projections of every event, timeliness, resolution, early warning and forecasts.",
    )
    app.state.stats = service
    app.state.analytics = analytics
    app.state.reports = ReportBuilder(repository=repository, service=service, divisions=_divisions(settings))
    return app


def _divisions(settings: StatsSettings) -> Divisions | None:
    """Names for the report (codes alone if the data package is missing)."""
    try:
        return load_divisions(str(settings.divisions_path))
    except DivisionsMissing:
        return None
