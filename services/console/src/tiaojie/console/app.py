"""Composition root of the console.

The console talks to people over HTTP and to the services over their HTTP APIs; it
neither produces nor consumes events, so it has no Kafka broker: it is ready when its
own small database (accounts and sessions) answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from tiaojie.console.demo import demo_accounts
from tiaojie.console.metrics import ConsoleMetrics
from tiaojie.console.pages import cases, centre, desk, leader, mediator, public, registry
from tiaojie.console.repository import ConsoleRepository
from tiaojie.console.security import CsrfSigner
from tiaojie.console.service import ConsoleService
from tiaojie.console.settings import ConsoleSettings
from tiaojie.console.upstream import Upstream, UpstreamError
from tiaojie.console.web import (
    STATIC,
    CsrfRefused,
    RoleForbidden,
    SignInRequired,
    Web,
    csrf_guard,
    make_env,
    new_anon,
    render,
    security_headers,
)
from tiaojie.runtime.auth import published_jwks
from tiaojie.runtime.clock import Clock, SystemClock
from tiaojie.runtime.divisions import load_divisions
from tiaojie.runtime.http import BodySizeLimit
from tiaojie.runtime.logging import configure_logging, get_logger
from tiaojie.runtime.metrics import new_registry
from tiaojie.runtime.metrics import render as render_metrics
from tiaojie.runtime.mongo import make_client, ping

log = get_logger(__name__)
SWEEP_SECONDS = 600.0
_NOT_PAGES = ("/static/", "/assets/", "/healthz", "/readyz", "/metrics", "/.well-known/")


def create_app(
    settings: ConsoleSettings | None = None, *, clock: Clock | None = None, configure_logs: bool = True
) -> FastAPI:
    settings = settings or ConsoleSettings()
    if configure_logs:
        configure_logging(service=settings.service_name, level=settings.log_level, json=settings.log_json)
    metrics_registry = new_registry()
    metrics = ConsoleMetrics(metrics_registry)
    mongo = make_client(settings, app_name="tiaojie-console", registry=metrics_registry)
    repository = ConsoleRepository(mongo[settings.database(settings.database_name)])
    service = ConsoleService(
        repository=repository, settings=settings, clock=clock or SystemClock(), metrics=metrics
    )
    upstream = Upstream(settings, metrics)
    jwks = published_jwks(settings)
    web = Web(
        settings=settings,
        service=service,
        upstream=upstream,
        divisions=load_divisions(str(settings.divisions_path)),
        signer=CsrfSigner(settings.csrf_key.get_secret_value()),
        metrics=metrics,
        env=make_env(),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await repository.create_indexes()
        if settings.environment == "production" and await repository.count_demo_accounts():
            # A database that was a development deployment's: its demo accounts share one
            # published password.
            raise RuntimeError("production refuses to start: the database holds demo accounts")
        created = await service.ensure_demo_accounts(
            specs=demo_accounts([code for code, _ in web.city_counties()])
        )
        if created:
            log.info("demo accounts created", count=created)
        sweeper = asyncio.create_task(_sweep_forever(service))
        log.info("service started", port=settings.port)
        try:
            yield
        finally:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
            await web.upstream.close()
            await mongo.close()
            log.info("service stopped")

    app = FastAPI(
        title="Tiaojie console 调解工作台",
        lifespan=lifespan,
        dependencies=[Depends(csrf_guard)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.web = web
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)

    @app.middleware("http")
    async def browser_cookie_and_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # Every browser gets an anonymous cookie first, so forms shown before sign-in
        # (apply, sign-in) carry a CSRF token bound to it.
        fresh = None
        page = not request.url.path.startswith(_NOT_PAGES)
        if page and web.anon_cookie not in request.cookies:
            fresh = request.state.anon = new_anon()
        response = await call_next(request)
        if fresh:
            response.set_cookie(
                web.anon_cookie,
                fresh,
                path="/",
                secure=settings.cookie_secure,
                httponly=True,
                samesite="lax",
            )
        security_headers(response, private=not request.url.path.startswith(("/static", "/assets")))
        return response

    _install_error_pages(app, web)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    echarts = settings.console_assets / "node_modules" / "echarts" / "dist"
    app.mount("/assets/echarts", StaticFiles(directory=echarts, check_dir=False), name="echarts")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": settings.service_name}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        database = await ping(mongo)
        body = {"status": "ready" if database else "not_ready", "database": database}
        return JSONResponse(body, 200 if database else 503)

    @app.get("/.well-known/jwks.json", include_in_schema=False)
    async def jwks_document() -> JSONResponse:
        return JSONResponse(jwks, headers={"Cache-Control": "public, max-age=300"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics_page() -> Response:
        data, content_type = render_metrics(metrics_registry)
        return Response(data, media_type=content_type)

    # centre before cases: /cases/{id}/transfer is more specific than /cases/{id}/{action}.
    for module in (public, desk, centre, cases, mediator, leader, registry):
        app.include_router(module.router)
    return app


async def _sweep_forever(service: ConsoleService) -> None:
    while True:
        try:
            removed = await service.sweep_sessions()
            if removed:
                log.info("expired sessions removed", count=removed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("session sweep failed", error=type(exc).__name__)
        await asyncio.sleep(SWEEP_SECONDS)


def _install_error_pages(app: FastAPI, web: Web) -> None:
    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        from urllib.parse import quote

        target = f"/login?next={quote(exc.next_path, safe='')}" + ("&expired=1" if exc.expired else "")
        response = RedirectResponse(target, status_code=303)
        if exc.expired:
            response.delete_cookie(
                web.session_cookie, path="/", secure=web.settings.cookie_secure, httponly=True
            )
        return response

    @app.exception_handler(RoleForbidden)
    async def _forbidden(request: Request, _: RoleForbidden) -> Response:
        return await render(
            request, "error.html", status=403, title="无权访问", message="当前账号的角色不能使用此页面。"
        )

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, _: CsrfRefused) -> Response:
        return await render(
            request,
            "error.html",
            status=403,
            title="请求未被接受",
            message="页面已过期或来源无法确认（防跨站请求保护）。请返回上一页刷新后重新提交。",
        )

    @app.exception_handler(UpstreamError)
    async def _upstream(request: Request, exc: UpstreamError) -> Response:
        status = exc.status if exc.status in (403, 404, 409, 422) else 502 if exc.status >= 500 else 400
        if exc.status == 503:
            status = 503
        title = {404: "记录不存在", 403: "无权访问", 409: "操作与当前状态冲突"}.get(status, "操作未完成")
        return await render(request, "error.html", status=status, title=title, message=exc.zh)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        title = {404: "页面不存在", 405: "不支持的请求方法", 413: "提交内容过大"}.get(
            exc.status_code, "请求无效"
        )
        return await render(request, "error.html", status=exc.status_code, title=title, message=title + "。")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled error", path=request.url.path, error=type(exc).__name__)
        return await render(
            request, "error.html", status=500, title="系统错误", message="系统暂时出现问题，请稍后再试。"
        )
