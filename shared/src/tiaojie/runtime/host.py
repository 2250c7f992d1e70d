"""ServiceHost: the composition every service's app.py uses.

One object per process that owns the metrics registry, the Kafka broker and publisher,
the database client, the reliable consumer and the FastAPI app with its lifespan:
topics and indexes are ensured, the broker starts after the routes are bound, background
loops run, and shutdown lets in-flight messages finish (or leaves them uncommitted).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response
from faststream.specification import AsyncAPI
from faststream.specification.asyncapi.site import get_asyncapi_html

from tiaojie.contracts import topics
from tiaojie.contracts.topics import dlq
from tiaojie.runtime.consumer import ConsumerMetrics, ReliableConsumer
from tiaojie.runtime.http import BodySizeLimit, document_errors, error_body, install_error_handlers
from tiaojie.runtime.kafka import EventPublisher, create_physical_topics, make_broker
from tiaojie.runtime.logging import configure_logging, get_logger
from tiaojie.runtime.metrics import new_registry, render
from tiaojie.runtime.mongo import make_client, ping
from tiaojie.runtime.settings import ServiceSettings

log = get_logger(__name__)

Hook = Callable[[], Coroutine[Any, Any, Any]]


class ServiceHost:
    """Everything a service process needs, wired the same way in every service."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        produces: Iterable[str] = (),
        configure_logs: bool = True,
    ) -> None:
        if configure_logs:
            configure_logging(service=settings.service_name, level=settings.log_level, json=settings.log_json)
        self.settings = settings
        self.service = settings.service_name
        self.registry = new_registry()
        self.broker = make_broker(settings, service=self.service, registry=self.registry)
        self.publisher = EventPublisher(self.broker, settings, registry=self.registry)
        self.mongo = make_client(settings, app_name=f"tiaojie-{self.service}", registry=self.registry)
        self.db = self.mongo[settings.database(settings.database_name)]
        self.consumer = ReliableConsumer(
            broker=self.broker,
            settings=settings,
            service=self.service,
            publisher=self.publisher,
            metrics=ConsumerMetrics(self.registry, self.service),
            probe=self.database_ready,
        )
        self.produces = list(produces)
        self._startup: list[Hook] = []
        self._background: list[Hook] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self.started = asyncio.Event()

    # -- composition ----------------------------------------------------------------
    def on_startup(self, hook: Hook) -> Hook:
        """Run once before the broker starts (indexes, caches)."""
        self._startup.append(hook)
        return hook

    def background(self, loop: Hook) -> Hook:
        """Run a loop for the life of the process (cancelled at shutdown)."""
        self._background.append(loop)
        return loop

    async def database_ready(self) -> bool:
        return await ping(self.mongo)

    async def kafka_ready(self) -> bool:
        try:
            return bool(await self.broker.ping(timeout=3))
        except Exception:
            return False

    async def ensure_topics(self) -> None:
        """Create the topics this service owns (what it produces, its inbound topics) and
        the DLQs of what it consumes: exactly what its ACLs let it create. The topics of
        other producers are theirs, and the deployment's provisioning creates them all."""
        owned = [*self.produces, *topics.INBOUND_OWNED_BY.get(self.service, ())]
        consumed = self.consumer.topics
        names = [self.settings.topic(t) for t in owned]
        names += [self.settings.topic(dlq(t)) for t in consumed]
        await create_physical_topics(self.settings, names)

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: FastAPI | None = None) -> AsyncIterator[None]:
        await self.ensure_topics()
        for hook in self._startup:
            await hook()
        self.consumer.bind()
        await self.broker.start()
        self._tasks = [asyncio.create_task(loop()) for loop in self._background]
        self.started.set()
        log.info("service started", port=self.settings.port, replica=self.settings.replica)
        try:
            yield
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            # Waits up to graceful_timeout for running handlers; a cancelled one is not
            # committed (AckPolicy.ACK leaves cancelled messages unacknowledged).
            await self.broker.stop()
            await self.mongo.close()
            log.info("service stopped")

    def http_app(
        self,
        routers: Sequence[APIRouter],
        *,
        title: str,
        description: str,
        version: str = "0.1.0",
    ) -> FastAPI:
        """The FastAPI app: service routes plus /healthz, /readyz, /metrics, /asyncapi."""
        app = FastAPI(title=title, description=description, version=version, lifespan=self.lifespan)
        app.state.settings = self.settings
        app.state.host = self
        app.add_middleware(BodySizeLimit, max_bytes=self.settings.max_body_bytes)
        install_error_handlers(app)
        app.include_router(self._probes(title=title, version=version))
        for router in routers:
            app.include_router(router)
        document_errors(app)
        return app

    def _probes(self, *, title: str, version: str) -> APIRouter:
        router = APIRouter(tags=["operations"])

        @router.get("/healthz", summary="Liveness")
        async def healthz() -> dict[str, str]:
            return {"status": "ok", "service": self.service}

        @router.get("/readyz", summary="Readiness: Kafka and the database reachable")
        async def readyz() -> JSONResponse:
            kafka, database = await asyncio.gather(self.kafka_ready(), self.database_ready())
            ok = kafka and database and self.started.is_set()
            body = {"status": "ready" if ok else "not_ready", "kafka": kafka, "database": database}
            return JSONResponse(body if ok else {**error_body(503), **body}, 200 if ok else 503)

        @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
        async def metrics() -> Response:
            data, content_type = render(self.registry)
            return Response(data, media_type=content_type)

        @router.get("/asyncapi.json", summary="AsyncAPI document of the events", include_in_schema=False)
        async def asyncapi_json() -> JSONResponse:
            return JSONResponse(self.asyncapi(title=title, version=version).to_jsonable())

        @router.get("/asyncapi", summary="AsyncAPI page", include_in_schema=False)
        async def asyncapi_page() -> HTMLResponse:
            return HTMLResponse(get_asyncapi_html(self.asyncapi(title=title, version=version)))

        return router

    def asyncapi(self, *, title: str, version: str) -> Any:
        """The AsyncAPI 3.0 specification generated from the subscribers and publishers."""
        self.consumer.bind()
        return AsyncAPI(self.broker, title=f"{title} events", version=version).to_specification()


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run the app under uvicorn with graceful shutdown on SIGTERM/SIGINT."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        loop="auto",  # uvloop, a dependency of the runtime on every platform that has it
        timeout_graceful_shutdown=int(settings.graceful_timeout),
        # uvicorn would believe X-Forwarded-For from loopback and rewrite the client address
        # before the app sees it; which proxies to believe is each app's setting
        # (TIAOJIE_TRUSTED_PROXIES), so uvicorn believes none.
        proxy_headers=False,
    )
    uvicorn.Server(config).run()
