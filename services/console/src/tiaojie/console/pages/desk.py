"""The intake desk: the queue awaiting an acceptance decision and the registration of
walk-in (来访) and phone (来电) disputes."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from tiaojie.console import forms
from tiaojie.console.models import SessionDoc
from tiaojie.console.pages.public import CATEGORY_CHOICES
from tiaojie.console.upstream import UpstreamError
from tiaojie.console.web import caller_of, redirect, render, require, web_of
from tiaojie.contracts.common import Role

router = APIRouter()
Registrar = Annotated[SessionDoc, Depends(require(Role.DESK, Role.CENTER, Role.ADMIN))]
STATUSES = [
    ("received", "待受理"),
    ("accepted", "已受理"),
    ("assigned", "已指派"),
    ("in_mediation", "调解中"),
    ("rejected", "不予受理"),
    ("", "全部"),
]


@router.get("/desk", response_class=HTMLResponse)
async def queue(request: Request, user: Registrar, status: str = "received") -> Response:
    web = web_of(request)
    wanted = status if status in {s for s, _ in STATUSES} else "received"
    cases = await web.upstream.get(caller_of(user), "intake", "/api/v1/disputes", status=wanted, limit=100)
    return await render(request, "desk.html", cases=cases, current=wanted, statuses=STATUSES)


def _form_context(
    request: Request, user: SessionDoc, values: dict[str, str], errors: dict[str, list[str]]
) -> dict[str, Any]:
    web = web_of(request)
    counties = [(code, name) for code, name in web.city_counties() if code in user.counties]
    return {
        "values": values,
        "errors": errors,
        "categories": [(v, label) for v, label, _ in CATEGORY_CHOICES],
        "counties": counties,
        "townships": {
            code: [(t.code, t.name) for t in web.divisions.townships_of(code)] for code, _ in counties
        },
        "idempotency_key": values.get("idempotency_key") or uuid.uuid4().hex,
        "applicant_rows": forms.row_count(values, "applicants"),
        "respondent_rows": forms.row_count(values, "respondents"),
    }


@router.get("/desk/new", response_class=HTMLResponse)
async def new_form(request: Request, user: Registrar) -> Response:
    values = {"channel": "desk"}
    if len(user.counties) == 1:
        values["county"] = user.counties[0]
    return await render(request, "desk_new.html", **_form_context(request, user, values, {}))


@router.post("/desk/new", response_class=HTMLResponse)
async def register(request: Request, user: Registrar) -> Response:
    form = await request.form()
    values = forms.echo(form)
    channel = "hotline" if forms.text(form, "channel") == "hotline" else "desk"
    body = forms.submission(form, channel=channel)
    key = forms.text(form, "idempotency_key") or uuid.uuid4().hex
    try:
        case = await web_of(request).upstream.post(
            caller_of(user), "intake", "/api/v1/disputes", body, headers={"Idempotency-Key": f"desk-{key}"}
        )
    except UpstreamError as exc:
        if exc.status != 422:
            raise
        errors = forms.errors_by_field(exc.field_errors)
        return await render(
            request,
            "desk_new.html",
            status=422,
            **_form_context(request, user, values, errors),
        )
    return redirect(f"/cases/{case['id']}", "linked" if case.get("linked") else "registered")
