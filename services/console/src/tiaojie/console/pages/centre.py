"""The county centre: referrals from courts, police, petition bureaus and the hotline with
their clocks, transfers between bodies (转办/交办/上报), and what is overdue.

The referral service lists referrals by county but transfers only per case, so pending
transfers are handled on the case page (its hand-overs) and the centre page lists the
cases in transfer."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from tiaojie.console import forms
from tiaojie.console.models import SessionDoc
from tiaojie.console.pages.cases import case_page_with
from tiaojie.console.upstream import UpstreamError
from tiaojie.console.web import caller_of, parse_time, redirect, render, require, web_of
from tiaojie.contracts.common import Role

router = APIRouter()
Centre = Annotated[SessionDoc, Depends(require(Role.CENTER, Role.BUREAU, Role.ADMIN))]
Deciding = Annotated[SessionDoc, Depends(require(Role.DESK, Role.CENTER, Role.BUREAU, Role.ADMIN))]
AGENCY_KINDS = {
    "court": "法院",
    "police": "公安",
    "petition": "信访",
    "hotline": "12345热线",
    "government": "政府部门",
}
REFERRAL_KINDS = {
    "delegation": "委派（诉前调解）",
    "entrustment_ordinary": "委托（普通程序）",
    "entrustment_simplified": "委托（简易程序）",
    "petition": "访调",
    "police": "警调",
    "hotline": "12345热线",
    "government": "部门移交",
}
_CASE_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
OPEN_CASE_STATES = ("received", "accepted", "assigned", "in_mediation", "transferred")


def _overdue(item: dict[str, Any], now: datetime) -> bool:
    deadline = item.get("next_deadline") or {}
    due = parse_time(deadline.get("due")) if isinstance(deadline, dict) else None
    return due is not None and due < now


@router.get("/centre", response_class=HTMLResponse)
async def centre(request: Request, user: Centre) -> Response:
    web = web_of(request)
    caller = caller_of(user)
    referrals, transferred = await asyncio.gather(
        web.upstream.get(caller, "referral", "/api/v1/referrals"),
        web.upstream.get(caller, "intake", "/api/v1/disputes", status="transferred", limit=100),
    )
    referrals.sort(key=lambda r: str(r.get("requested_at")), reverse=True)
    pending = [r for r in referrals if r.get("status") == "requested"]
    active = [r for r in referrals if r.get("status") in ("accepted", "in_mediation")]
    answered = [r for r in referrals if r not in pending and r not in active]
    return await render(
        request,
        "centre.html",
        pending=pending,
        active=active,
        answered=answered,
        transferred=transferred,
        agency_kinds=AGENCY_KINDS,
        referral_kinds=REFERRAL_KINDS,
        place=web.place,
        key=uuid.uuid4().hex,
    )


@router.get("/centre/overdue", response_class=HTMLResponse)
async def overdue(request: Request, user: Centre) -> Response:
    web = web_of(request)
    caller = caller_of(user)
    lists = await asyncio.gather(
        web.upstream.get(caller, "referral", "/api/v1/referrals"),
        *(
            web.upstream.get(caller, "intake", "/api/v1/disputes", status=s, limit=200)
            for s in OPEN_CASE_STATES
        ),
    )
    now = datetime.now(UTC)
    referrals = [r for r in lists[0] if r.get("overdue")]
    cases = sorted(
        (c for group in lists[1:] for c in group if _overdue(c, now)),
        key=lambda c: str((c.get("next_deadline") or {}).get("due")),
    )
    return await render(
        request, "overdue.html", referrals=referrals, cases=cases, agency_kinds=AGENCY_KINDS, place=web.place
    )


async def _decide(
    request: Request, user: SessionDoc, path: str, body: dict[str, Any] | None, back: str, done: str
) -> Response:
    try:
        await web_of(request).upstream.post(caller_of(user), "referral", path, body)
    except UpstreamError as exc:
        if exc.status not in (409, 422):
            raise
        reasons = "；".join(m for ms in exc.field_errors.values() for m in ms)
        return await render(
            request,
            "error.html",
            status=exc.status,
            title="操作未完成",
            message=f"{exc.zh}{'：' + reasons if reasons else ''}",
        )
    return redirect(back, done)


@router.post("/centre/referrals/{referral_id}/{decision}", response_class=HTMLResponse)
async def decide_referral(request: Request, referral_id: str, decision: str, user: Deciding) -> Response:
    form = await request.form()
    if decision == "accept":
        body = (
            {"organisation_id": forms.text(form, "organisation_id")}
            if forms.text(form, "organisation_id")
            else None
        )
        done = "referral_accepted"
    elif decision == "decline":
        body, done = {"reason": forms.text(form, "reason") or ""}, "referral_declined"
    else:
        raise UpstreamError(404, "操作不存在", "no such action")
    return await _decide(request, user, f"/api/v1/referrals/{referral_id}/{decision}", body, "/centre", done)


@router.post("/transfers/{transfer_id}/{decision}", response_class=HTMLResponse)
async def decide_transfer(request: Request, transfer_id: str, decision: str, user: Deciding) -> Response:
    form = await request.form()
    case_id = forms.text(form, "case_id") or ""
    if decision == "accept":
        body, done = None, "transfer_accepted"
    elif decision == "decline":
        body, done = {"reason": forms.text(form, "reason") or ""}, "transfer_declined"
    else:
        raise UpstreamError(404, "操作不存在", "no such action")
    back = f"/cases/{case_id}" if _CASE_ID.fullmatch(case_id) else "/centre"
    return await _decide(request, user, f"/api/v1/transfers/{transfer_id}/{decision}", body, back, done)


@router.post("/cases/{case_id}/transfer", response_class=HTMLResponse)
async def request_transfer(request: Request, case_id: str, user: Deciding) -> Response:
    form = await request.form()
    body: dict[str, Any] = {
        "case_id": case_id,
        "kind": forms.text(form, "kind") or "",
        "to_organisation_id": forms.text(form, "to_organisation_id") or "",
        "reason": forms.text(form, "reason") or "",
        "reason_code": forms.text(form, "reason_code") or "",
    }
    if forms.text(form, "due_days"):
        body["due_days"] = forms.text(form, "due_days")
    key = forms.text(form, "idempotency_key") or uuid.uuid4().hex
    try:
        await web_of(request).upstream.post(
            caller_of(user),
            "referral",
            "/api/v1/transfers",
            body,
            headers={"Idempotency-Key": f"transfer-{key}"},
        )
    except UpstreamError as exc:
        if exc.status not in (404, 409, 422):
            raise
        return await case_page_with(
            request,
            user,
            case_id,
            status=exc.status,
            open_action="transfer",
            values=forms.echo(form),
            errors=forms.errors_by_field(exc.field_errors),
            failure=exc.zh,
        )
    return redirect(f"/cases/{case_id}", "transfer")
