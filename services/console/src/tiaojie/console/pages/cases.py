"""One case: its facts, clocks, risk signals, duplicates, file index and history, and the
actions the person's role may take at its stage (each a form posting back here)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from tiaojie.console import forms
from tiaojie.console.models import SessionDoc
from tiaojie.console.upstream import UpstreamError
from tiaojie.console.web import CHINA, HOME, Staff, caller_of, redirect, render, web_of
from tiaojie.contracts.common import Role

router = APIRouter()
_CASE_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")

R = Role
REGISTRARS = frozenset({R.DESK, R.CENTER, R.ADMIN})
HANDLERS = frozenset({R.MEDIATOR, R.CENTER})
CLERKS = frozenset({R.DESK, R.CENTER, R.MEDIATOR})
OPEN = frozenset({"received", "accepted", "assigned", "in_mediation", "transferred"})
CLOCKED = frozenset({"accepted", "assigned", "in_mediation", "transferred"})


def _local_moment(value: str | None) -> str | None:
    """A datetime-local input (China time) as an ISO moment with its offset."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=CHINA).isoformat()
    except ValueError:
        return value  # the service names the field and the format it wants


def _flag(form: FormData, name: str) -> bool:
    return form.get(name) in ("on", "true", "1", "yes")


def _split(value: str | None) -> list[str]:
    return [p.strip() for p in re.split(r"[,，、;；\n]", value or "") if p.strip()]


def _optional(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v not in (None, "")}


@dataclass(frozen=True)
class Action:
    label: str
    roles: frozenset[Role]
    states: frozenset[str]
    path: str  # under /api/v1/disputes/{id}
    body: Callable[[FormData], dict[str, Any]]
    done: str
    method: str = "POST"


t = forms.text
ACTIONS: dict[str, Action] = {
    "accept": Action(
        "受理",
        REGISTRARS,
        frozenset({"received"}),
        "/accept",
        lambda f: _optional(organisation_id=t(f, "organisation_id")),
        "accepted",
    ),
    "reject": Action(
        "不予受理",
        REGISTRARS,
        frozenset({"received"}),
        "/reject",
        lambda f: {"reason_code": t(f, "reason_code") or "", "reason_text": t(f, "reason_text") or ""},
        "rejected",
    ),
    "category": Action(
        "修改纠纷类别",
        REGISTRARS,
        OPEN,
        "/category",
        lambda f: {"category": t(f, "category") or ""},
        "category",
        "PUT",
    ),
    "session": Action(
        "记录调解",
        HANDLERS,
        frozenset({"assigned", "in_mediation"}),
        "/sessions",
        lambda f: {
            "held_at": _local_moment(t(f, "held_at")) or "",
            "place": t(f, "place") or "",
            "participants": _split(t(f, "participants")),
            "record": t(f, "record") or "",
        },
        "session",
    ),
    "resolve": Action(
        "调解成功（达成协议）",
        HANDLERS,
        frozenset({"in_mediation"}),
        "/resolve",
        lambda f: {
            "form": t(f, "form") or "",
            "summary": t(f, "summary") or "",
            "text": t(f, "text") or "",
            "judicial_confirmation": _flag(f, "judicial_confirmation"),
            **_optional(
                amount=(t(f, "amount") or "").replace(",", "") or None,
                performance_due=t(f, "performance_due"),
            ),
        },
        "resolved",
    ),
    "fail": Action(
        "调解不成",
        HANDLERS,
        frozenset({"in_mediation"}),
        "/fail",
        lambda f: {"route": t(f, "route") or "", "reason": t(f, "reason") or ""},
        "failed",
    ),
    "performance": Action(
        "记录协议履行",
        HANDLERS,
        frozenset({"resolved", "followed_up"}),
        "/performance",
        lambda f: {"performed_on": t(f, "performed_on") or "", "note": t(f, "note") or ""},
        "performed",
    ),
    "follow_up": Action(
        "回访",
        HANDLERS,
        frozenset({"resolved", "failed"}),
        "/follow-up",
        lambda f: {
            "visited_on": t(f, "visited_on") or "",
            "method": t(f, "method") or "",
            "record": t(f, "record") or "",
            **({"satisfied": t(f, "satisfied") == "yes"} if t(f, "satisfied") in ("yes", "no") else {}),
        },
        "followed_up",
    ),
    "archive": Action("归档", HANDLERS, frozenset({"followed_up"}), "/archive", lambda f: {}, "archived"),
    "document": Action(
        "登记卷宗材料",
        CLERKS,
        OPEN | frozenset({"resolved", "failed", "followed_up", "rejected", "withdrawn"}),
        "/documents",
        lambda f: {"part": t(f, "part") or "", "title": t(f, "title") or "", "uri": t(f, "uri") or ""},
        "document",
    ),
    "pause": Action(
        "暂停调解期限",
        HANDLERS,
        CLOCKED,
        "/clock/pause",
        lambda f: {"reason": t(f, "reason") or ""},
        "clock",
    ),
    "resume": Action("恢复调解期限", HANDLERS, CLOCKED, "/clock/resume", lambda f: {}, "clock"),
    "extend": Action(
        "延长调解期限",
        HANDLERS,
        CLOCKED,
        "/clock/extend",
        lambda f: {
            "days": t(f, "days") or "",
            "applicant_consent": _flag(f, "applicant_consent"),
            "respondent_consent": _flag(f, "respondent_consent"),
            "consent_record": t(f, "consent_record") or "",
        },
        "clock",
    ),
    "withdraw": Action(
        "撤回申请", CLERKS, OPEN, "/withdraw", lambda f: {"reason": t(f, "reason") or ""}, "withdrawn"
    ),
}
# Reassignment is the registry's: a centre user picks another mediator of the county.
REASSIGNERS = frozenset({R.CENTER, R.BUREAU, R.ADMIN})
# Hand-overs between bodies (转办/交办/上报) are the referral service's.
TRANSFERRERS = frozenset({R.DESK, R.CENTER, R.BUREAU, R.ADMIN})


async def _reference(request: Request) -> dict[str, Any]:
    """Intake's codes and labels (fixed lists), fetched once per process."""
    web = web_of(request)
    if web.reference is None:
        web.reference = await web.upstream.get(None, "intake", "/api/v1/reference")
    return web.reference


def _defaults() -> dict[str, str]:
    """Today and now (China time) prefilled where a form asks when something happened."""
    now = datetime.now(CHINA)
    today = now.date().isoformat()
    return {"held_at": now.strftime("%Y-%m-%dT%H:%M"), "visited_on": today, "performed_on": today}


def available(case: dict[str, Any], role: Role) -> list[str]:
    status = str(case.get("status"))
    return [name for name, a in ACTIONS.items() if role in a.roles and status in a.states]


async def case_page_with(
    request: Request,
    user: SessionDoc,
    case_id: str,
    *,
    status: int = 200,
    reveal: bool = False,
    open_action: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, list[str]] | None = None,
    failure: str | None = None,
) -> Response:
    if not _CASE_ID.fullmatch(case_id):
        raise UpstreamError(404, "案件不存在", "case not found")
    web = web_of(request)
    caller = caller_of(user)
    case = await web.upstream.get(caller, "intake", f"/api/v1/disputes/{case_id}", reveal=reveal or None)
    casefile = await web.upstream.get(caller, "intake", f"/api/v1/disputes/{case_id}/file")
    decisions: list[dict[str, Any]] = []
    mediators: list[dict[str, Any]] = []
    if user.role in REASSIGNERS | {R.DESK}:
        try:
            assignment = await web.upstream.get(caller, "registry", f"/api/v1/cases/{case_id}/assignment")
            decisions = assignment.get("decisions", [])
        except UpstreamError:
            decisions = []  # the registry has not seen the case yet, or is away: the page still works
    if user.role in REASSIGNERS and case.get("status") in OPEN and case.get("status") != "received":
        try:
            mediators = await web.upstream.get(caller, "registry", "/api/v1/mediators", county=case["county"])
        except UpstreamError:
            mediators = []
    hops: dict[str, Any] = {"referrals": [], "transfers": []}
    organisations: list[dict[str, Any]] = []
    try:
        hops = await web.upstream.get(caller, "referral", f"/api/v1/cases/{case_id}/hops")
    except UpstreamError:
        pass  # no hand-overs known, or the referral service is away: the page still works
    suggestions: list[dict[str, Any]] = []
    if user.role in HANDLERS and case.get("status") in OPEN:
        try:
            # The library reads the description to find similar published cases; it keeps nothing.
            found = await web.upstream.post(
                caller,
                "library",
                "/api/v1/suggestions",
                {"case_id": case_id, "description": case["description"]},
            )
            suggestions = found.get("suggestions", [])
        except UpstreamError:
            suggestions = []  # no library, or nothing published yet: the page still works
    can_transfer = user.role in TRANSFERRERS and case.get("status") in OPEN
    if can_transfer:
        try:
            organisations = await web.upstream.get(
                caller, "registry", "/api/v1/organisations", county=case["county"]
            )
        except UpstreamError:
            organisations = []
    return await render(
        request,
        "case.html",
        status=status,
        case=case,
        casefile=casefile,
        decisions=decisions,
        mediators=[m for m in mediators if m.get("eligible")],
        actions=available(case, user.role),
        labels={name: a.label for name, a in ACTIONS.items()},
        can_reassign=user.role in REASSIGNERS and case.get("status") in OPEN - {"received"},
        can_reveal=user.role in CLERKS and not reveal,
        hops=hops,
        suggestions=suggestions,
        can_transfer=can_transfer,
        can_decide=user.role in TRANSFERRERS,
        organisations=[o for o in organisations if o.get("id") != case.get("organisation_id")],
        revealed=reveal,
        reference=await _reference(request),
        open_action=open_action,
        values=values or {},
        errors=errors or {},
        failure=failure,
        key=uuid.uuid4().hex,
        back=HOME.get(user.role, "/"),
        defaults=_defaults(),
    )


@router.get("/cases/{case_id}", response_class=HTMLResponse)
async def case_page(request: Request, case_id: str, user: Staff, reveal: int = 0) -> Response:
    return await case_page_with(request, user, case_id, reveal=bool(reveal) and user.role in CLERKS)


@router.post("/cases/{case_id}/reassign", response_class=HTMLResponse)
async def reassign(request: Request, case_id: str, user: Staff) -> Response:
    form = await request.form()
    if user.role not in REASSIGNERS:
        raise UpstreamError(403, "当前角色无权重新指派调解员", "forbidden")
    body = {"mediator_id": forms.text(form, "mediator_id") or "", "reason": forms.text(form, "reason") or ""}
    key = forms.text(form, "idempotency_key") or uuid.uuid4().hex
    try:
        await web_of(request).upstream.post(
            caller_of(user),
            "registry",
            f"/api/v1/cases/{case_id}/assignment",
            body,
            headers={"Idempotency-Key": f"reassign-{key}"},
        )
    except UpstreamError as exc:
        if exc.status not in (409, 422):
            raise
        return await case_page_with(
            request,
            user,
            case_id,
            status=exc.status,
            open_action="reassign",
            values=forms.echo(form),
            errors=forms.errors_by_field(exc.field_errors),
            failure=exc.zh,
        )
    return redirect(f"/cases/{case_id}", "reassigned")


@router.post("/cases/{case_id}/{action}", response_class=HTMLResponse)
async def act(request: Request, case_id: str, action: str, user: Staff) -> Response:
    form = await request.form()
    spec = ACTIONS.get(action)
    if spec is None or user.role not in spec.roles:
        raise UpstreamError(403, "当前角色无权执行此操作", "forbidden")
    key = forms.text(form, "idempotency_key") or uuid.uuid4().hex
    try:
        await web_of(request).upstream.call(
            caller_of(user),
            "intake",
            spec.method,
            f"/api/v1/disputes/{case_id}{spec.path}",
            json=spec.body(form),
            headers={"Idempotency-Key": f"{action}-{key}"},
        )
    except UpstreamError as exc:
        if exc.status not in (409, 422):
            raise
        return await case_page_with(
            request,
            user,
            case_id,
            status=exc.status,
            open_action=action,
            values=forms.echo(form),
            errors=forms.errors_by_field(exc.field_errors),
            failure=exc.zh,
        )
    return redirect(f"/cases/{case_id}", spec.done)
