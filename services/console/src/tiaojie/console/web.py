"""Request plumbing shared by every page: templates, the signed-in person, CSRF on every
unsafe request, security headers, and rendering with the layout's context."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from tiaojie.console.metrics import ConsoleMetrics
from tiaojie.console.models import SessionDoc
from tiaojie.console.security import CsrfSigner, token_digest
from tiaojie.console.service import ConsoleService
from tiaojie.console.settings import ConsoleSettings
from tiaojie.console.upstream import Caller, Upstream
from tiaojie.contracts.common import (
    CASE_STATUS_LABELS,
    CATEGORY_LABELS,
    CHANNEL_LABELS,
    RISK_LABELS,
    CaseStatus,
    Category,
    Channel,
    RiskLevel,
    Role,
)
from tiaojie.runtime.calendar import CHINA_TZ
from tiaojie.runtime.divisions import Divisions
from tiaojie.runtime.pii import mask_id_number, mask_name, mask_phone, scrub

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
CHINA = CHINA_TZ  # the runtime's one UTC+8 zone
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

ROLE_LABELS: dict[Role, str] = {
    Role.CITIZEN: "当事人",
    Role.DESK: "受理窗口",
    Role.MEDIATOR: "调解员",
    Role.CENTER: "调解中心",
    Role.BUREAU: "司法局",
    Role.AGENCY: "协作单位",
    Role.ADMIN: "系统管理员",
}
STAFF = (Role.DESK, Role.MEDIATOR, Role.CENTER, Role.BUREAU, Role.ADMIN)
# Who may see a party's full phone number: the desk that registers and the mediator who
# calls the parties. Nobody sees a full ID number on a page.
PHONE_ROLES = frozenset({Role.DESK, Role.MEDIATOR})

# (path, label, roles) of the navigation, in order.
NAV: tuple[tuple[str, str, frozenset[Role]], ...] = (
    ("/desk", "受理台", frozenset({Role.DESK, Role.CENTER, Role.ADMIN})),
    ("/desk/new", "登记纠纷", frozenset({Role.DESK, Role.CENTER, Role.ADMIN})),
    ("/mediator", "我的案件", frozenset({Role.MEDIATOR})),
    ("/centre", "转介与转办", frozenset({Role.CENTER, Role.BUREAU, Role.ADMIN})),
    ("/centre/overdue", "逾期督办", frozenset({Role.CENTER, Role.BUREAU, Role.ADMIN})),
    ("/leader", "领导视图", frozenset({Role.BUREAU, Role.CENTER, Role.ADMIN})),
    ("/registry", "组织与调解员", frozenset({Role.BUREAU, Role.ADMIN})),
    ("/registry/compliance", "合规报告", frozenset({Role.BUREAU, Role.ADMIN})),
)
HOME: dict[Role, str] = {
    Role.DESK: "/desk",
    Role.MEDIATOR: "/mediator",
    Role.CENTER: "/centre",
    Role.BUREAU: "/leader",
    Role.ADMIN: "/registry",
}


class SignInRequired(Exception):
    def __init__(self, next_path: str, *, expired: bool) -> None:
        super().__init__("sign-in required")
        self.next_path = next_path
        self.expired = expired


class RoleForbidden(Exception):
    pass


class CsrfRefused(Exception):
    pass


@dataclass
class Web:
    """What every page needs, held on app.state.web."""

    settings: ConsoleSettings
    service: ConsoleService
    upstream: Upstream
    divisions: Divisions
    signer: CsrfSigner
    metrics: ConsoleMetrics
    env: Environment
    reference: dict[str, Any] | None = None  # intake's fixed code lists, fetched once

    @property
    def session_cookie(self) -> str:
        # __Host- cookies must be Secure, host-only and for the whole site.
        return "__Host-tj_session" if self.settings.cookie_secure else "tj_session"

    @property
    def anon_cookie(self) -> str:
        return "__Host-tj_anon" if self.settings.cookie_secure else "tj_anon"

    def city_counties(self) -> list[tuple[str, str]]:
        return [(d.code, d.name) for d in self.divisions.counties_of_city(self.settings.city)]

    def place(self, code: str | None) -> str:
        return (self.divisions.name(code) or code) if code else ""


def make_env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=_when,
        day=_day,
        due=_due,
        category=lambda v: CATEGORY_LABELS.get(Category(v), v) if v in Category._value2member_map_ else v,
        channel=lambda v: CHANNEL_LABELS.get(Channel(v), v) if v in Channel._value2member_map_ else v,
        status=lambda v: (
            CASE_STATUS_LABELS.get(CaseStatus(v), v) if v in CaseStatus._value2member_map_ else v
        ),
        risk=lambda v: RISK_LABELS.get(RiskLevel(v), v) if v in RiskLevel._value2member_map_ else v,
        role=lambda v: ROLE_LABELS.get(Role(v), v) if v in Role._value2member_map_ else v,
        mask_id=lambda v: mask_id_number(str(v)) if v else "",
        mask_name=lambda v: mask_name(str(v)) if v else "",
        mask_phone=lambda v: mask_phone(str(v)) if v else "",
        scrub=lambda v: scrub(str(v)) if v is not None else "",
        percent=lambda v: "—" if v is None else f"{float(v) * 100:.1f}%",
        number=lambda v: "—" if v is None else (f"{v:,.0f}" if isinstance(v, int | float) else str(v)),
        urlquote=lambda v: quote(str(v), safe=""),
        zip=lambda a, b: zip(a, b, strict=False),
    )
    env.globals.update(
        CATEGORY_LABELS={str(k): v for k, v in CATEGORY_LABELS.items()},
        CHANNEL_LABELS={str(k): v for k, v in CHANNEL_LABELS.items()},
        STATUS_LABELS={str(k): v for k, v in CASE_STATUS_LABELS.items()},
    )
    return env


def parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _when(value: Any) -> str:
    """A moment in China time, e.g. 2026-03-02 17:05."""
    moment = parse_time(value)
    return (
        moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")
        if moment
        else ("" if value is None else str(value))
    )


def _day(value: Any) -> str:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    moment = parse_time(value)
    return moment.astimezone(CHINA).strftime("%Y-%m-%d") if moment else ("" if value is None else str(value))


def _due(value: Any, now: datetime | None = None) -> str:
    """A deadline as people say it: 剩余2天5小时 / 已逾期3小时."""
    moment = parse_time(value)
    if moment is None:
        return "—"
    left = moment - (now or datetime.now(UTC))
    overdue = left.total_seconds() < 0
    span = abs(left)
    days, hours = span.days, span.seconds // 3600
    text = f"{days}天{hours}小时" if days else (f"{hours}小时" if hours else f"{span.seconds // 60}分钟")
    return f"已逾期{text}" if overdue else f"剩余{text}"


# -- the person ------------------------------------------------------------------------


def web_of(request: Request) -> Web:
    return request.app.state.web


async def current_session(request: Request) -> SessionDoc | None:
    """The live session of this browser, if any (resolved once per request)."""
    if hasattr(request.state, "session"):
        return request.state.session
    web = web_of(request)
    session = await web.service.resolve(token=request.cookies.get(web.session_cookie))
    request.state.session = session
    return session


def require(*roles: Role) -> Callable[[Request], Awaitable[SessionDoc]]:
    """Dependency: the signed-in person if their role is one of these; otherwise sign in
    (an expired session says so) or a 403 page."""
    allowed = frozenset(roles or STAFF)

    async def dependency(request: Request) -> SessionDoc:
        session = await current_session(request)
        if session is None:
            had_cookie = web_of(request).session_cookie in request.cookies
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInRequired(target if request.method in SAFE_METHODS else "/", expired=had_cookie)
        if session.role not in allowed:
            raise RoleForbidden()
        return session

    return dependency


def caller_of(session: SessionDoc) -> Caller:
    return Caller(
        subject=session.username,
        role=session.role,
        counties=tuple(session.counties),
        mediator_id=session.mediator_id,
        organisation_id=session.organisation_id,
    )


Staff = Annotated[SessionDoc, Depends(require(*STAFF))]


# -- CSRF ------------------------------------------------------------------------------


def csrf_binding(request: Request) -> str | None:
    """What this browser's CSRF token is bound to: its session, else its anonymous cookie."""
    web = web_of(request)
    session_token = request.cookies.get(web.session_cookie)
    if session_token:
        return "s:" + token_digest(session_token)
    anon = request.cookies.get(web.anon_cookie) or getattr(request.state, "anon", None)
    return "a:" + anon if anon else None


def csrf_token(request: Request) -> str:
    binding = csrf_binding(request)
    return web_of(request).signer.token_for(binding) if binding else ""


async def csrf_guard(request: Request) -> None:
    """App-wide dependency: every unsafe request carries this browser's token and, when the
    browser says where it comes from, comes from this site."""
    if request.method in SAFE_METHODS:
        return
    web = web_of(request)
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        web.metrics.csrf_refused.inc()
        raise CsrfRefused()
    token = request.headers.get("x-csrf-token")
    if token is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get("csrf_token")
            token = value if isinstance(value, str) else None
    binding = csrf_binding(request)
    if binding is None or not web.signer.valid(binding, token):
        web.metrics.csrf_refused.inc()
        raise CsrfRefused()


# -- rendering -------------------------------------------------------------------------


def nav_for(role: Role | None) -> list[tuple[str, str]]:
    return [(path, label) for path, label, roles in NAV if role in roles]


async def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """A page with the layout's context: the person, navigation, CSRF token, notices."""
    web = web_of(request)
    session = await current_session(request)
    notice = NOTICES.get(request.query_params.get("done", ""))
    body = web.env.get_template(template).render(
        request=request,
        user=session,
        role=session.role if session else None,
        nav=nav_for(session.role if session else None),
        csrf_token=csrf_token(request),
        notice=context.pop("notice", None) or notice,
        show_phone=bool(session and session.role in PHONE_ROLES),
        now=datetime.now(UTC),
        path=request.url.path,
        **context,
    )
    area = request.url.path.strip("/").split("/")[0] or "home"
    web.metrics.pages.labels(area if area in AREAS else "other", str(status)).inc()
    return HTMLResponse(body, status_code=status)


AREAS = frozenset(
    {"home", "apply", "track", "login", "desk", "mediator", "centre", "leader", "registry", "cases"}
)

NOTICES = {
    "registered": "纠纷已登记。",
    "accepted": "已受理，案号已生成。",
    "rejected": "已作出不予受理决定。",
    "session": "调解记录已保存。",
    "resolved": "已记录调解协议，案件调解成功。",
    "failed": "已记录调解不成及引导途径。",
    "followed_up": "回访记录已保存。",
    "performed": "履行情况已记录。",
    "archived": "案件已归档。",
    "document": "卷宗材料已登记。",
    "reassigned": "已重新指派调解员。",
    "transfer": "转办申请已提交。",
    "transfer_accepted": "已接收转办。",
    "transfer_declined": "已退回转办。",
    "referral_accepted": "已接收转介，案件已建立。",
    "referral_declined": "已退回转介。",
    "imported": "名册已导入。",
    "linked": "该纠纷与尚在办理的案件相同，已并入原案件。",
    "category": "纠纷类别已修改。",
    "clock": "调解期限已更新。",
    "withdrawn": "申请已撤回。",
    "signed_out": "您已安全退出。",
}


def redirect(path: str, done: str | None = None) -> RedirectResponse:
    """303 after a form (post/redirect/get), with a notice code."""
    sep = "&" if "?" in path else "?"
    return RedirectResponse(path + (f"{sep}done={done}" if done else ""), status_code=303)


def safe_next(value: str | None) -> str | None:
    """Only same-site paths are followed after sign-in (no open redirect)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return None


def security_headers(response: Response, *, private: bool) -> None:
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    # Tracking codes live in URLs: never send them to another site.
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if private:
        response.headers["Cache-Control"] = "no-store"


def new_anon() -> str:
    return secrets.token_urlsafe(18)
