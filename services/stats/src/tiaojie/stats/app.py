"""Composition root of the stats service."""

from __future__ import annotations

from fastapi import FastAPI

from tiaojie.contracts import topics
from tiaojie.runtime.host import ServiceHost
from tiaojie.stats.api import router
from tiaojie.stats.handlers import register_handlers
from tiaojie.stats.metrics import StatsMetrics
from tiaojie.stats.repository import StatsRepository
from tiaojie.stats.service import StatsService
from tiaojie.stats.settings import StatsSettings


def create_app(settings: StatsSettings | None = None) -> FastAPI:
    settings = settings or StatsSettings()
    host = ServiceHost(settings, produces=[topics.ALERTS])
    repository = StatsRepository(host.db)
    service = StatsService(repository=repository, metrics=StatsMetrics(host.registry))
    register_handlers(host.consumer, service)
    host.on_startup(repository.create_indexes)
    app = host.http_app(
        [router],
        title="Tiaojie stats 统计与预警",
        description="Projections of every event, timeliness, resolution, early warning and forecasts.",
    )
    app.state.stats = service
    return app
