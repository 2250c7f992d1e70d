"""HTTP conventions shared by every service: bilingual errors, body limits, probes."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tiaojie.runtime.errors import DomainError, Invalid, field_errors
from tiaojie.runtime.pii import scrub

_STATUS_TEXT = {
    400: ("请求无效", "bad request"),
    401: ("需要登录", "authentication required"),
    403: ("无权访问", "forbidden"),
    404: ("记录不存在", "not found"),
    405: ("不支持的请求方法", "method not allowed"),
    409: ("与当前状态冲突", "conflict with the current state"),
    413: ("请求体过大", "request body too large"),
    415: ("不支持的内容类型", "unsupported media type"),
    500: ("服务器内部错误", "internal server error"),
    503: ("服务暂不可用", "service unavailable"),
}


def error_body(status: int, code: str | None = None, **extra: Any) -> dict[str, Any]:
    zh, en = _STATUS_TEXT.get(status, ("请求失败", "request failed"))
    return {"code": code or en.replace(" ", "_"), "message_zh": zh, "message_en": en, **extra}


class BodySizeLimit:
    """Pure ASGI middleware: refuse request bodies above a limit with 413 (bilingual)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(send)
                return
        seen = 0
        too_large = False

        async def limited() -> Message:
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    too_large = True
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = error_body(
            413,
            "body_too_large",
            limit_bytes=self.max_bytes,
            message_zh=f"请求体超过 {self.max_bytes // 1024} KiB 上限",
            message_en=f"request body exceeds {self.max_bytes // 1024} KiB",
        )
        response = JSONResponse(body, status_code=413)
        await response({"type": "http"}, _empty_receive, send)


class _BodyTooLarge(Exception):
    pass


async def _empty_receive() -> Message:
    return {"type": "http.disconnect"}


def install_error_handlers(app: FastAPI) -> None:
    """422 with per-field bilingual reasons, 404/409 from domain errors, no leaked values."""

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = field_errors(list(exc.errors()), drop_prefix=("body",))
        return JSONResponse(Invalid(errors).body(), status_code=422)

    @app.exception_handler(Invalid)
    async def _invalid(_: Request, exc: Invalid) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=422)

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, dict) else error_body(exc.status_code)
        return JSONResponse(detail, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        from tiaojie.runtime.logging import get_logger

        get_logger(__name__).error(
            "unhandled error", path=request.url.path, error=scrub(f"{type(exc).__name__}: {exc}")
        )
        return JSONResponse(error_body(500), status_code=500)


# -- the errors in the OpenAPI document ----------------------------------------------------

_ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "description": "Every error: a code, the reason in Chinese and in English, and context.",
    "required": ["code", "message_zh", "message_en"],
    "properties": {
        "code": {"type": "string"},
        "message_zh": {"type": "string"},
        "message_en": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "per field (422)",
            "items": {
                "type": "object",
                "required": ["field", "code", "message_zh", "message_en"],
                "properties": {
                    "field": {"type": "string"},
                    "code": {"type": "string"},
                    "message_zh": {"type": "string"},
                    "message_en": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}
_WHY = {
    401: "no token, or one that is invalid, expired or not meant for this service",
    403: "the caller's role may not do this",
    404: "no such record, or one outside the caller's counties (indistinguishable)",
    409: "not allowed in the record's current state, or a concurrent change",
    413: "request body over the size limit",
    422: "invalid input, with a reason per field",
    429: "too many requests from this client: retry after `Retry-After` seconds",
    503: "Kafka or the database is unreachable",
}


# A route that rate-limits its callers says so: `openapi_extra={THROTTLED: True}`.
THROTTLED = "x-tiaojie-throttled"


def document_errors(app: FastAPI) -> None:
    """List in the app's OpenAPI document the error responses each route can give, with the
    shared error body: 401/403/404 where a token is required, 409 for writes, 413 where a
    body is read, 422 where anything is read, 429 where the route is THROTTLED."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Error"] = _ERROR_SCHEMA
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                if not isinstance(operation, dict):
                    continue
                codes = _error_codes(path, method, operation)
                responses = operation.setdefault("responses", {})
                for code in codes:
                    responses[str(code)] = {
                        "description": _WHY[code],
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    }
        # FastAPI's own 422 body is replaced by ours (install_error_handlers).
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _error_codes(path: str, method: str, operation: dict[str, Any]) -> list[int]:
    codes: list[int] = []
    if operation.get("security"):
        codes += [401, 403, 404]
    elif "{" in path:
        codes.append(404)
    if method in {"post", "put", "patch", "delete"}:
        codes.append(409)
    if "requestBody" in operation:
        codes.append(413)
    if operation.get("parameters") or "requestBody" in operation:
        codes.append(422)
    if operation.pop(THROTTLED, False):
        codes.append(429)
    if path == "/readyz":
        codes.append(503)
    return codes
