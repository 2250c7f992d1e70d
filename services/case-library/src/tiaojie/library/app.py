"""Composition root of the case-library service: broker, routes, index, lifespan, HTTP app."""

from __future__ import annotations

from fastapi import FastAPI

from tiaojie.contracts import topics
from tiaojie.contracts.library import EntryPublished
from tiaojie.library.api import router
from tiaojie.library.handlers import register_handlers
from tiaojie.library.metrics import LibraryMetrics
from tiaojie.library.repository import LibraryRepository
from tiaojie.library.search import SearchIndex
from tiaojie.library.service import LibraryService
from tiaojie.library.settings import LibrarySettings
from tiaojie.library.tail import IndexTail
from tiaojie.runtime.clock import Clock, SystemClock
from tiaojie.runtime.divisions import DivisionsMissing, load_divisions
from tiaojie.runtime.host import ServiceHost
from tiaojie.runtime.mongo import sweep_forever
from tiaojie.runtime.pii import Protector


def create_app(settings: LibrarySettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or LibrarySettings()
    host = ServiceHost(settings, produces=[topics.LIBRARY])
    repository = LibraryRepository(host.db, publisher=host.publisher, settings=settings)
    metrics = LibraryMetrics(host.registry)
    service = LibraryService(
        repository=repository,
        protector=Protector(
            encryption_key=settings.pii_key.get_secret_value(),
            match_key=settings.match_key.get_secret_value(),
        ),
        index=SearchIndex(writer_heap_bytes=settings.index_writer_heap_bytes),
        settings=settings,
        clock=clock or SystemClock(),
        metrics=metrics,
    )
    register_handlers(host.consumer, service)
    host.publisher.declare(
        topics.LIBRARY,
        title=topics.LIBRARY,
        description="Nomination, publication and withdrawal of typical cases, keyed by entry id "
        "(EntryNominated, EntryPublished with the whole anonymised case, EntryDeclined, EntryWithdrawn).",
        schema=EntryPublished,
    )
    tail = IndexTail(settings, poll_ms=settings.tail_poll_ms)

    async def start_index() -> None:
        await repository.create_indexes()
        await tail.mark()  # before the load: nothing published meanwhile is missed
        await service.load_index()

    async def follow() -> None:
        # Not a periodic sweep: it tails the topic and applies each event as it comes.
        await tail.run(
            service.apply_library_event, lambda outcome: metrics.index_events.labels(outcome).inc()
        )

    async def sweep_revisions() -> None:
        # Revisions a crashed writer left unsettled: snapshots rolled forward, events published.
        await sweep_forever(service.sweep, settings.outbox_relay_interval, what="library revisions sweep")

    host.on_startup(start_index)
    host.background(follow)
    host.background(sweep_revisions)
    app = host.http_app(
        [router],
        title="Tiaojie case library 人民调解案例库",
        description="Typical mediation cases: nominated from archived cases, anonymised, curated by the "
        "bureau, searchable in Chinese, suggested for open cases, exported as Word documents.",
    )
    app.state.library = service
    try:
        app.state.divisions = load_divisions(str(settings.divisions_path))
    except DivisionsMissing:
        app.state.divisions = None  # documents then show the county code instead of its name
    return app
