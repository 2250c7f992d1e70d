"""Pages without an account: the home page, 掌上办 (apply and track), sign-in and sign-out."""

from __future__ import annotations

import math
import re
import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tiaojie.console import forms
from tiaojie.console.models import SessionDoc
from tiaojie.console.security import client_address
from tiaojie.console.service import SignInRefused
from tiaojie.console.upstream import Caller, UpstreamError
from tiaojie.console.web import HOME, STAFF, current_session, redirect, render, require, safe_next, web_of
from tiaojie.contracts.common import CATEGORY_LABELS, Category, Role

router = APIRouter()

# Help for choosing a category, in the words people use (the service classifies the
# description anyway; the applicant's choice is a hint).
CATEGORY_HELP: dict[Category, str] = {
    Category.MARRIAGE_FAMILY: "离婚、抚养、赡养、继承、家庭矛盾",
    Category.NEIGHBOURHOOD: "邻居之间的通行、噪音、漏水、堆放杂物",
    Category.HOUSING_HOMESTEAD: "房屋买卖租赁、宅基地界址",
    Category.CONTRACT: "借款、买卖、承揽等合同履行",
    Category.PRODUCTION_BUSINESS: "生产经营、合伙、承包经营",
    Category.DAMAGES: "人身或财产受到损害要求赔偿",
    Category.LABOUR: "拖欠工资、工伤、劳动合同",
    Category.VILLAGE_AFFAIRS: "村务公开、集体收益分配",
    Category.FOREST_LAND: "山林、土地承包经营权",
    Category.LAND_EXPROPRIATION: "征地补偿、房屋拆迁",
    Category.ENVIRONMENT: "污水、废气、噪声污染",
    Category.ROAD_TRAFFIC: "交通事故责任与赔偿",
    Category.MEDICAL: "就医过程中的医疗损害",
    Category.PROPERTY_MANAGEMENT: "物业服务、物业费、公共设施",
    Category.CONSUMER: "购物、服务质量、退换货",
    Category.TOURISM: "旅游团费、行程、景区服务",
    Category.INTELLECTUAL_PROPERTY: "商标、专利、著作权",
    Category.ECOMMERCE: "网购、平台交易",
    Category.FINANCE_INSURANCE: "保险理赔、金融借贷",
    Category.CAMPUS_SAFETY: "学生在校期间的伤害事故",
    Category.OTHER: "以上都不是，或不确定",
}
CATEGORY_CHOICES = [(str(c), CATEGORY_LABELS[c], CATEGORY_HELP[c]) for c in Category]
_CODE = re.compile(r"^[A-Za-z0-9]{6,20}$")


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    session = await current_session(request)
    if session is not None and session.role in HOME:
        return RedirectResponse(HOME[session.role], status_code=303)
    return await render(request, "home.html")


# -- 掌上办: apply -------------------------------------------------------------------------


def _apply_context(request: Request, values: dict[str, str], errors: dict[str, list[str]]) -> dict[str, Any]:
    web = web_of(request)
    counties = web.city_counties()
    return {
        "values": values,
        "errors": errors,
        "categories": CATEGORY_CHOICES,
        "counties": counties,
        "townships": {
            code: [(t.code, t.name) for t in web.divisions.townships_of(code)] for code, _ in counties
        },
        "idempotency_key": values.get("idempotency_key") or uuid.uuid4().hex,
    }


@router.get("/apply", response_class=HTMLResponse)
async def apply_form(request: Request) -> Response:
    return await render(request, "apply.html", **_apply_context(request, {}, {}))


@router.post("/apply", response_class=HTMLResponse)
async def apply(request: Request) -> Response:
    form = await request.form()
    values = forms.echo(form)
    channel = "mobile" if forms.text(form, "channel") != "web" else "web"
    body = forms.submission(form, channel=channel)
    web = web_of(request)
    county = body["county"]
    if county not in {code for code, _ in web.city_counties()}:
        errors = {"county": ["请选择纠纷发生地所在的县区"]}
        return await render(request, "apply.html", status=422, **_apply_context(request, values, errors))
    # A citizen has no account: the console applies for them with a citizen token of
    # that county, and the channel says it came from 掌上办 / 网上办.
    caller = Caller(subject="console:citizen", role=Role.CITIZEN, counties=(county,))
    key = forms.text(form, "idempotency_key") or uuid.uuid4().hex
    try:
        case = await web.upstream.post(
            caller, "intake", "/api/v1/disputes", body, headers={"Idempotency-Key": f"apply-{key}"}
        )
    except UpstreamError as exc:
        if exc.status != 422:
            raise
        errors = forms.errors_by_field(exc.field_errors)
        return await render(request, "apply.html", status=422, **_apply_context(request, values, errors))
    return await render(request, "applied.html", case=case, place=web.place(body.get("township") or county))


# -- tracking -----------------------------------------------------------------------------


@router.get("/track", response_class=HTMLResponse)
async def track_form(request: Request, code: str | None = None) -> Response:
    if code:
        return RedirectResponse(f"/track/{code.strip().upper()}", status_code=303)
    return await render(request, "track_form.html")


@router.get("/track/{code}", response_class=HTMLResponse)
async def track(request: Request, code: str) -> Response:
    code = code.strip().upper()
    if not _CODE.fullmatch(code):
        return await render(request, "track_form.html", status=404, failure="查询码格式不正确", code=code)
    web = web_of(request)
    try:
        view = await web.upstream.get(None, "intake", f"/api/v1/track/{code}")
    except UpstreamError as exc:
        if exc.status != 404:
            raise
        return await render(
            request, "track_form.html", status=404, failure="未找到该查询码对应的申请", code=code
        )
    return await render(request, "track.html", view=view, code=code)


# -- sign-in --------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str | None = None, expired: int = 0) -> Response:
    session = await current_session(request)
    if session is not None:
        return RedirectResponse(safe_next(next) or HOME.get(session.role, "/"), status_code=303)
    notice = "登录已过期，请重新登录。" if expired else None
    return await render(request, "login.html", next=safe_next(next) or "", notice=notice)


# What a refused sign-in is told, and with which status.
_REFUSALS: dict[str, tuple[int, str]] = {
    "refused": (401, "用户名或密码错误。"),
    "throttled": (429, "此网络地址登录失败次数过多，请于{wait}后再试。"),
    "locked": (429, "该账号在此网络地址登录失败次数过多，已暂时锁定，请于{wait}后再试。"),
    "delayed": (429, "该账号近期登录失败次数较多，请于{wait}后再试。"),
    "default_password": (403, "该账号仍在使用默认密码，生产环境不允许登录，请联系管理员重设密码。"),
}


def _in_words(seconds: int) -> str:
    return f"{seconds}秒" if seconds < 120 else f"{math.ceil(seconds / 60)}分钟"


def client_address_of(request: Request) -> str:
    """The browser's address; X-Forwarded-For only from a trusted proxy (settings)."""
    settings = web_of(request).settings
    peer = request.client.host if request.client else None
    return client_address(peer, request.headers.get("x-forwarded-for"), settings.trusted_proxies)


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    web = web_of(request)
    try:
        opened = await web.service.sign_in(
            username=username.strip(), password=password, address=client_address_of(request)
        )
    except SignInRefused as refused:
        status, message = _REFUSALS[refused.reason]
        wait = refused.retry_after or 1
        response = await render(
            request,
            "login.html",
            status=status,
            next=safe_next(next) or "",
            failure=message.format(wait=_in_words(wait)),
            username=username,
        )
        if status == 429:
            response.headers["Retry-After"] = str(wait)
        return response
    target = safe_next(next) or HOME.get(opened.session.role, "/")
    signed_in = RedirectResponse(target, status_code=303)
    signed_in.set_cookie(
        web.session_cookie,
        opened.token,
        max_age=web.settings.session_max_seconds,
        path="/",
        secure=web.settings.cookie_secure,
        httponly=True,
        samesite="lax",
    )
    return signed_in


@router.get("/account", response_class=HTMLResponse)
async def account(request: Request, user: Annotated[SessionDoc, Depends(require(*STAFF))]) -> Response:
    """Who is signed in, with which role and counties, and until when."""
    web = web_of(request)
    idle_until = user.last_seen + timedelta(seconds=web.settings.session_idle_seconds)
    return await render(
        request,
        "account.html",
        counties=[web.place(c) or c for c in user.counties],
        idle_until=min(idle_until, user.expires_at),
    )


@router.post("/logout")
async def logout(request: Request) -> Response:
    web = web_of(request)
    await web.service.sign_out(token=request.cookies.get(web.session_cookie))
    response = redirect("/login", "signed_out")
    response.delete_cookie(
        web.session_cookie, path="/", secure=web.settings.cookie_secure, httponly=True, samesite="lax"
    )
    return response
