"""Calls to the services' HTTP APIs on a person's behalf.

Each call carries a token signed just for it (a couple of minutes long), for the one
service called (its audience: no other service accepts it), with the person's role and
counties, so every service scopes the answer exactly as it would for any other caller;
the console never widens what a person may see.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tiaojie.console.metrics import ConsoleMetrics
from tiaojie.console.settings import ConsoleSettings
from tiaojie.contracts.common import Role
from tiaojie.runtime.auth import TokenSigner, issue_token, signer_for
from tiaojie.runtime.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Caller:
    """Who the console calls for: a signed-in person, or a citizen without an account."""

    subject: str
    role: Role
    counties: tuple[str, ...]
    mediator_id: str | None = None
    organisation_id: str | None = None


@dataclass
class UpstreamError(Exception):
    """A service refused or failed; zh/en say why, `errors` are its per-field reasons."""

    status: int
    zh: str
    en: str
    errors: list[dict[str, str]] = field(default_factory=list)
    body: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"{self.status} {self.en}")

    @property
    def field_errors(self) -> dict[str, list[str]]:
        """Chinese reasons per field path (e.g. applicants.0.id_number)."""
        out: dict[str, list[str]] = {}
        for error in self.errors:
            out.setdefault(str(error.get("field", "body")), []).append(str(error.get("message_zh", "")))
        return out


_FALLBACK = {
    401: ("登录已失效，请重新登录", "authentication failed"),
    403: ("当前角色无权执行此操作", "forbidden"),
    404: ("记录不存在", "not found"),
    409: ("与当前状态冲突", "conflict with the current state"),
    413: ("提交内容过大", "request too large"),
    422: ("提交的数据有误，请按字段提示修改", "invalid data"),
}


class Upstream:
    def __init__(
        self, settings: ConsoleSettings, metrics: ConsoleMetrics, signer: TokenSigner | None = None
    ) -> None:
        self.settings = settings
        self.signer = signer or signer_for(settings)
        self.metrics = metrics
        self.bases = {
            "intake": settings.intake_url,
            "referral": settings.referral_url,
            "registry": settings.registry_url,
            "stats": settings.stats_url,
            "library": settings.library_url,
        }
        self.client = httpx.AsyncClient(timeout=settings.upstream_timeout)

    async def close(self) -> None:
        await self.client.aclose()

    def token(self, caller: Caller, service: str) -> str:
        """A short-lived token of the caller for one service."""
        return issue_token(
            self.signer,
            subject=caller.subject,
            role=caller.role,
            counties=list(caller.counties),
            audience=service,
            ttl_seconds=self.settings.upstream_token_seconds,
            mediator_id=caller.mediator_id,
            organisation_id=caller.organisation_id,
        )

    async def call(
        self,
        caller: Caller | None,
        service: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        data: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """One call; a refusal or failure becomes UpstreamError with the service's reasons."""
        sent = dict(headers or {})
        if caller is not None:
            sent["Authorization"] = f"Bearer {self.token(caller, service)}"
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        started = time.perf_counter()
        try:
            response = await self.client.request(
                method,
                self.bases[service] + path,
                json=json,
                params=clean,
                headers=sent,
                files=files,
                data=data,
                content=content,
            )
        except httpx.HTTPError as exc:
            self.metrics.upstream.labels(service, "unreachable").observe(time.perf_counter() - started)
            log.warning("service unreachable", service=service, error=type(exc).__name__)
            raise UpstreamError(503, "服务暂不可用，请稍后再试", f"{service} unavailable") from None
        self.metrics.upstream.labels(service, str(response.status_code)).observe(
            time.perf_counter() - started
        )
        if response.status_code < 400:
            return response
        raise _error_of(service, response)

    async def get(self, caller: Caller | None, service: str, path: str, **params: Any) -> Any:
        return (await self.call(caller, service, "GET", path, params=params)).json()

    async def post(
        self, caller: Caller | None, service: str, path: str, body: Any = None, **kwargs: Any
    ) -> Any:
        response = await self.call(caller, service, "POST", path, json=body, **kwargs)
        return response.json() if response.content else {}


def _error_of(service: str, response: httpx.Response) -> UpstreamError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if isinstance(body.get("detail"), dict):  # FastAPI's default HTTPException shape
        body = {**body["detail"], **{k: v for k, v in body.items() if k != "detail"}}
    status = response.status_code
    zh, en = _FALLBACK.get(status, ("服务处理失败，请稍后再试", f"{service} failed"))
    raw_errors = body.get("errors")
    errors: list[Any] = raw_errors if isinstance(raw_errors, list) else []
    return UpstreamError(
        status=status,
        zh=str(body.get("message_zh") or zh) if status < 500 else zh,
        en=str(body.get("message_en") or en) if status < 500 else en,
        errors=[e for e in errors if isinstance(e, dict)],
        body=body,
    )
