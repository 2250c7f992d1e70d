"""Intake's HTTP routes: thin adapters from requests to the rules.

Who may do what: desk and center users register and decide acceptance; the assigned
mediator (token role mediator with a mediator_id claim) or a center user of the county
acts on a case in mediation; bureau users read their counties; citizens submit online
without an account and follow their case by tracking code. A case outside the caller's
scope is a 404, like a missing one.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tiaojie.contracts.common import (
    CASE_STATUS_LABELS,
    CATEGORY_LABELS,
    CHANNEL_LABELS,
    RISK_LABELS,
    Role,
)
from tiaojie.contracts.intake import DisputeSubmission
from tiaojie.intake import casefile, lifecycle
from tiaojie.intake.audit import ACTIONS
from tiaojie.intake.models import CaseDoc
from tiaojie.intake.repository import MAX_PAGE, Scope
from tiaojie.intake.schemas import (
    AcceptIn,
    AuditEntryOut,
    AuditPageOut,
    CaseOut,
    CaseSummary,
    CategoryIn,
    DocumentIn,
    ExtendIn,
    FailIn,
    FileIndexOut,
    FollowUpIn,
    NominationIn,
    NominationOut,
    PauseIn,
    PerformanceIn,
    ReceiptOut,
    RejectIn,
    ResolveIn,
    SessionIn,
    TrackOut,
    WithdrawIn,
    case_out,
    case_summary,
    file_index_out,
    receipt_out,
    receipt_track_out,
    track_out,
)
from tiaojie.intake.service import (
    AGREEMENT_FORMS,
    FAILURE_ROUTES,
    FOLLOW_UP_METHODS,
    REJECTION_REASONS,
    IntakeService,
    action_id_for,
    case_id_for,
    normalise_tracking_code,
)
from tiaojie.intake.throttle import Throttle
from tiaojie.intake.validation import CITIZEN_CHANNELS
from tiaojie.runtime.auth import Principal, require_roles, verify_token
from tiaojie.runtime.errors import FieldError, Forbidden, Invalid, NotFound
from tiaojie.runtime.http import THROTTLED, error_body

router = APIRouter(prefix="/api/v1", tags=["disputes"])
_optional_bearer = HTTPBearer(auto_error=False, description="Tiaojie access token (JWT); none for citizens")

# Roles whose work needs the parties' identities and numbers in clear (on request).
REVEAL_ROLES = frozenset({Role.DESK, Role.CENTER, Role.MEDIATOR})


def get_service(request: Request) -> IntakeService:
    return request.app.state.intake


async def optional_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_optional_bearer)],
) -> Principal | None:
    """The caller if a token is sent (and valid), None for an anonymous citizen."""
    if credentials is None:
        return None
    try:
        return verify_token(request.app.state.settings, credentials.credentials)
    except (jwt.InvalidTokenError, ValueError, KeyError):
        raise HTTPException(
            status_code=401,
            detail=error_body(
                401,
                "unauthorized",
                message_zh="访问令牌无效或已过期",
                message_en="invalid or expired access token",
            ),
            headers={"WWW-Authenticate": "Bearer"},
        ) from None


async def _throttled(request: Request, what: str) -> None:
    """429 with Retry-After once the client's address is over its limit for `what`."""
    throttle: Throttle = request.app.state.throttle
    # request.client is the peer, or what a trusted proxy forwarded (ProxyHeadersMiddleware).
    client = request.client.host if request.client else "unknown"
    wait = await throttle.hit(what=what, client=client)
    if wait is not None:
        raise HTTPException(
            status_code=429,
            detail=error_body(
                429,
                "rate_limited",
                message_zh=f"请求过于频繁，请{wait}秒后再试",
                message_en=f"too many requests from this address; retry in {wait} s",
                retry_after=wait,
            ),
            headers={"Retry-After": str(wait)},
        )


async def throttle_anonymous_submission(
    request: Request, principal: Annotated[Principal | None, Depends(optional_principal)]
) -> None:
    """Staff and the console (which throttles its own callers) carry tokens; anyone else
    is counted by address."""
    if principal is None:
        await _throttled(request, "submit")


async def throttle_tracking(request: Request) -> None:
    await _throttled(request, "track")


Service = Annotated[IntakeService, Depends(get_service)]
Reader = Annotated[
    Principal, Depends(require_roles(Role.DESK, Role.CENTER, Role.BUREAU, Role.MEDIATOR, Role.ADMIN))
]
Registrar = Annotated[Principal, Depends(require_roles(Role.DESK, Role.CENTER, Role.ADMIN))]
Handler = Annotated[Principal, Depends(require_roles(Role.MEDIATOR, Role.CENTER))]
Auditor = Annotated[Principal, Depends(require_roles(Role.BUREAU, Role.ADMIN))]
Purpose = Annotated[
    str | None, Query(max_length=200, description="why the case is read (recorded in the audit log)")
]
RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {"description": "too many calls without a token from this address (see Retry-After)"}
}
Withdrawer = Annotated[Principal, Depends(require_roles(Role.DESK, Role.CENTER, Role.MEDIATOR))]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


async def scope_of(principal: Principal, service: IntakeService) -> Scope:
    """Counties always; the token's organisation and those under it when it names one; a
    mediator only their own cases (no mediator_id claim: none). See access.py."""
    return await service.scope_for(
        counties=principal.counties,
        organisation_id=principal.organisation_id,
        mediator_id=(principal.mediator_id or "\x00") if principal.role == Role.MEDIATOR else None,
    )


async def present(service: IntakeService, case: CaseDoc, **kwargs: Any) -> CaseOut:
    organisation = await service.repo.get_organisation(case.organisation_id) if case.organisation_id else None
    return case_out(
        case, protector=service.protector, divisions=service.divisions, organisation=organisation, **kwargs
    )


def _action(principal: Principal, case_id: str, action: str, key: str | None) -> str:
    return action_id_for(scope=f"{principal.subject}\x00{case_id}\x00{action}", key=key)


# -- channels in -------------------------------------------------------------------------------
@router.post(
    "/disputes",
    status_code=201,
    response_model=CaseOut | ReceiptOut,
    dependencies=[Depends(throttle_anonymous_submission)],
    openapi_extra={THROTTLED: True},
    summary="Register a dispute (desk, hotline, web and mobile channels)",
    description=(
        "Staff (desk, center) register any HTTP channel and get the case back. Citizens submit "
        "web or mobile applications without a token and get a receipt with their tracking "
        "code. Send an Idempotency-Key: a retried POST returns the same case (200, "
        "duplicate=true). A submission that repeats an open case of the same applicant, "
        "respondent and category within the duplicate window is linked to it (200, linked=true). "
        "A citizen's repeat is linked too, but the citizen gets a receipt of their own (201): "
        "never another submission's tracking code. Calls without a token are limited per "
        "client address (429 with Retry-After)."
    ),
    responses={
        200: {"description": "replay of an earlier submission, or linked to an open case"},
        401: {},
        413: {},
        422: {},
        **RATE_LIMITED,
    },
)
async def submit_dispute(
    submission: DisputeSubmission,
    service: Service,
    response: Response,
    principal: Annotated[Principal | None, Depends(optional_principal)],
    idempotency_key: IdempotencyKey = None,
) -> CaseOut | ReceiptOut:
    citizen = principal is None or principal.role == Role.CITIZEN
    if citizen:
        if submission.channel not in CITIZEN_CHANNELS:
            raise Invalid(
                [
                    FieldError(
                        "channel",
                        "login_required",
                        "来访、来电登记须由工作人员登录后办理",
                        "desk and hotline registrations need a staff login",
                    )
                ]
            )
        first = submission.applicants[0]
        who = hashlib.sha256(f"{first.id_number}\x00{first.phone}".encode()).hexdigest()
        scope, by, authority = f"citizen:{who}", "citizen", "applicant"
    else:
        assert principal is not None
        if principal.role not in (Role.DESK, Role.CENTER, Role.ADMIN):
            raise HTTPException(
                403,
                detail=error_body(
                    403,
                    "forbidden",
                    message_zh="当前角色无权登记案件",
                    message_en=f"role {principal.role} may not register cases",
                ),
            )
        if submission.county not in principal.counties:
            raise Invalid(
                [
                    FieldError(
                        "county",
                        "county_out_of_scope",
                        "无权为该县区登记案件",
                        "you may not register cases for this county",
                    )
                ]
            )
        scope, by, authority = f"http:{principal.subject}", principal.subject, "desk"
    case_id = case_id_for(scope=scope, key=idempotency_key) if idempotency_key else None
    result = await service.register(
        submission=submission,
        registered_by=by,
        case_id=case_id,
        http=True,
        category_authority=authority,
        anonymous=citizen,
    )
    if not result.created:
        response.status_code = 200
    if citizen:
        # A citizen's own submission only: a new case, or the receipt of a linked repeat.
        own = result.receipt or result.case
        organisation = (
            await service.repo.get_organisation(own.organisation_id) if own.organisation_id else None
        )
        return receipt_out(own, organisation=organisation, duplicate=not result.created)
    return await present(
        service, result.case, duplicate=not result.created and not result.linked, linked=result.linked
    )


@router.get(
    "/track/{code:path}",
    response_model=TrackOut,
    tags=["citizens"],
    summary="Follow a case by its tracking code (no token)",
    dependencies=[Depends(throttle_tracking)],
    openapi_extra={THROTTLED: True},
    responses={404: {}, **RATE_LIMITED},
)
async def track(code: str, service: Service) -> TrackOut:
    # One answer for a malformed, unknown or any other code: existence never leaks.
    normalised = normalise_tracking_code(code)
    case = await service.repo.case_by_tracking_code(normalised) if normalised else None
    if case is None:
        receipt = await service.repo.receipt_by_tracking_code(normalised) if normalised else None
        if receipt is None:
            raise NotFound("查询码对应的案件", "case for this tracking code")
        organisation = (
            await service.repo.get_organisation(receipt.organisation_id) if receipt.organisation_id else None
        )
        return receipt_track_out(receipt, organisation=organisation, tz=service.tz)
    organisation = await service.repo.get_organisation(case.organisation_id) if case.organisation_id else None
    return track_out(case, organisation=organisation, tz=service.tz)


# -- reading ------------------------------------------------------------------------------------
@router.get(
    "/disputes", response_model=list[CaseSummary], summary="Cases of the caller's scope, newest first"
)
async def list_disputes(
    principal: Reader,
    service: Service,
    status: Annotated[str | None, Query(max_length=30)] = None,
    organisation_id: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    skip: Annotated[int, Query(ge=0, le=100000)] = 0,
) -> list[CaseSummary]:
    cases = await service.repo.list_cases(
        await scope_of(principal, service),
        status=status,
        organisation_id=organisation_id,
        limit=limit,
        skip=skip,
    )
    return [case_summary(c) for c in cases]


@router.get("/disputes/{case_id}", response_model=CaseOut, summary="A case of the caller's scope")
async def get_dispute(
    case_id: str,
    principal: Reader,
    service: Service,
    reveal: Annotated[
        bool, Query(description="show personal data in clear (desk, center, mediator; audited)")
    ] = False,
    purpose: Purpose = None,
) -> CaseOut:
    case = await service.repo.get_case_in(case_id, await scope_of(principal, service))
    if case is None:
        raise NotFound("案件", "case")
    clear = reveal and principal.role in REVEAL_ROLES
    await service.audit(
        case=case,
        subject=principal.subject,
        role=principal.role,
        action="reveal" if clear else "read",
        purpose=purpose,
    )
    return await present(service, case, reveal=clear)


@router.get(
    "/disputes/{case_id}/file",
    response_model=FileIndexOut,
    summary="The 13-part file index: present and missing",
)
async def get_file(
    case_id: str, principal: Reader, service: Service, purpose: Purpose = None
) -> FileIndexOut:
    case = await service.repo.get_case_in(case_id, await scope_of(principal, service))
    if case is None:
        raise NotFound("案件", "case")
    await service.audit(
        case=case, subject=principal.subject, role=principal.role, action="file", purpose=purpose
    )
    return file_index_out(case, casefile.file_index(case))


@router.get("/reference", tags=["reference"], summary="Codes and their Chinese labels")
async def reference() -> dict[str, Any]:
    return {
        "statuses": {str(k): v for k, v in CASE_STATUS_LABELS.items()},
        "categories": {str(k): v for k, v in CATEGORY_LABELS.items()},
        "channels": {str(k): v for k, v in CHANNEL_LABELS.items()},
        "risk_levels": {str(k): v for k, v in RISK_LABELS.items()},
        "rejection_reasons": REJECTION_REASONS,
        "failure_routes": FAILURE_ROUTES,
        "agreement_forms": AGREEMENT_FORMS,
        "follow_up_methods": FOLLOW_UP_METHODS,
        "file_parts": [{"code": p.code, "label": p.label, "label_en": p.label_en} for p in casefile.PARTS],
        "actions": lifecycle.ACTION_LABELS,
    }


# -- acceptance (desk, center) --------------------------------------------------------------------
@router.post("/disputes/{case_id}/accept", response_model=CaseOut, summary="受理: accept and number the case")
async def accept(
    case_id: str,
    principal: Registrar,
    service: Service,
    body: AcceptIn | None = None,
    idempotency_key: IdempotencyKey = None,
) -> CaseOut:
    case = await service.accept(
        case_id=case_id,
        by=principal.subject,
        action_id=_action(principal, case_id, "accept", idempotency_key),
        scope=await scope_of(principal, service),
        organisation_id=body.organisation_id if body else None,
    )
    return await present(service, case)


@router.post(
    "/disputes/{case_id}/reject",
    response_model=CaseOut,
    summary="不予受理, with a reason from the fixed list",
)
async def reject(
    case_id: str,
    body: RejectIn,
    principal: Registrar,
    service: Service,
    idempotency_key: IdempotencyKey = None,
) -> CaseOut:
    case = await service.reject(
        case_id=case_id,
        by=principal.subject,
        action_id=_action(principal, case_id, "reject", idempotency_key),
        scope=await scope_of(principal, service),
        reason_code=body.reason_code,
        reason_text=body.reason_text,
    )
    return await present(service, case)


@router.put("/disputes/{case_id}/category", response_model=CaseOut, summary="Override the category (desk)")
async def set_category(
    case_id: str,
    body: CategoryIn,
    principal: Registrar,
    service: Service,
    idempotency_key: IdempotencyKey = None,
) -> CaseOut:
    case = await service.set_category(
        case_id=case_id,
        by=principal.subject,
        action_id=_action(principal, case_id, f"category:{body.category}", idempotency_key),
        scope=await scope_of(principal, service),
        category=body.category,
    )
    return await present(service, case)


# -- the mediator's actions (assigned mediator, or a center user of the county) -------------------------
@router.post("/disputes/{case_id}/sessions", response_model=CaseOut, summary="Record a mediation session")
async def record_session(
    case_id: str,
    body: SessionIn,
    principal: Handler,
    service: Service,
    idempotency_key: IdempotencyKey = None,
) -> CaseOut:
    case = await service.record_session(
        case_id=case_id,
        by=principal.subject,
        action_id=_action(principal, case_id, "session", idempotency_key),
        scope=await scope_of(principal, service),
        held_at=body.held_at,
        place=body.place,
        participants=body.participants,
        record=body.record,
    )
    return await present(service, case)


@router.post("/disputes/{case_id}/resolve", response_model=CaseOut, summary="调解成功: record the agreement")
async def resolve(
    case_id: str,
    body: ResolveIn,
    principal: Handler,
    service: Service,
    idempotency_key: IdempotencyKey = None,
) -> CaseOut:
    case = await service.resolve(
        case_id=case_id,
        by=principal.subject,
        action_id=_action(principal, case_id, "resolve", idempotency_key),
        scope=await scope_of(principal, service),
        form=body.form,
        amount=body.amount,
        performance_due=body.performance_due,
        summary=body.summary,
        text=body.text,
        judicial_confirmation=body.judicial_confirmation,
    )
    return await present(service, case)


@router.post("/disputes/{case_id}/fail", response_model=CaseOut, summary="调解不成: record the guided route")
async def fail(
    case_id: str, body: FailIn, principal: Handler, service: Service, idempotency_key: IdempotencyKey = None
) -> CaseOut:
    case = await service.fail(
        case_id=case_id,
        by=principal.subject,
        action_id=_action(principal, case_id, "fail", idempotency_key),
        scope=await scope_of(principal, service),
        route=body.route,
        reason=body.reason,
    )
    return await present(service, case)


@router.post("/disputes/{case_id}/performance", response_model=CaseOut, summary="Record proof of performance")
async def performance(
    case_id: str,
    body: PerformanceIn,
    principal: Handler,
    service: Service,
    idempotency_key: IdempotencyKey = None,
) -> CaseOut:
    case = await service.record_performance(
        case_id=case_id,
        by=principal.subject,
        action_id=_action(principal, case_id, "performance", idempotency_key),
        scope=await scope_of(principal, service),
        performed_on=body.performed_on,
        note=body.note,
    )
    return await present(service, case)


@router.post(
    "/disputes/{case_id}/follow-up", response_model=CaseOut, summary="回访: record the follow-up visit"
)
async def follow_up(
    case_id: str,
    body: FollowUpIn,
    principal: Handler,
    service: Service,
    idempotency_key: IdempotencyKey = None,
) -> CaseOut:
    case = await service.follow_up(
        case_id=case_id,
        by=principal.subject,
        action_id=_action(principal, case_id, "follow_up", idempotency_key),
        scope=await scope_of(principal, service),
        visited_on=body.visited_on,
        method=body.method,
        satisfied=body.satisfied,
        record=body.record,
    )
    return await present(service, case)


@router.post("/disputes/{case_id}/archive", response_model=CaseOut, summary="归档: close a complete file")
async def archive(
    case_id: str, principal: Handler, service: Service, idempotency_key: IdempotencyKey = None
) -> CaseOut:
    case = await service.archive(
        case_id=case_id,
        by=principal.subject,
        action_id=_action(principal, case_id, "archive", idempotency_key),
        scope=await scope_of(principal, service),
    )
    await service.audit(
        case=case, subject=principal.subject, role=principal.role, action="document", purpose="归档：生成封底"
    )
    return await present(service, case)


@router.post("/disputes/{case_id}/withdraw", response_model=CaseOut, summary="The applicant withdraws")
async def withdraw(
    case_id: str,
    principal: Withdrawer,
    service: Service,
    body: WithdrawIn | None = None,
    idempotency_key: IdempotencyKey = None,
) -> CaseOut:
    case = await service.withdraw(
        case_id=case_id,
        by=principal.subject,
        action_id=_action(principal, case_id, "withdraw", idempotency_key),
        scope=await scope_of(principal, service),
        reason=body.reason if body else "",
    )
    return await present(service, case)


@router.post(
    "/disputes/{case_id}/documents", response_model=CaseOut, summary="Add a document's metadata to the file"
)
async def add_document(
    case_id: str,
    body: DocumentIn,
    principal: Withdrawer,
    service: Service,
    idempotency_key: IdempotencyKey = None,
) -> CaseOut:
    case = await service.add_document(
        case_id=case_id,
        by=principal.subject,
        action_id=_action(principal, case_id, "document", idempotency_key),
        scope=await scope_of(principal, service),
        part=body.part,
        title=body.title,
        uri=body.uri,
        media_type=body.media_type,
        sha256=body.sha256,
        pages=body.pages,
    )
    await service.audit(
        case=case,
        subject=principal.subject,
        role=principal.role,
        action="document",
        purpose=f"归入卷宗：{body.part}",
    )
    return await present(service, case)


@router.post("/disputes/{case_id}/clock/pause", response_model=CaseOut, summary="Pause the mediation clock")
async def pause_clock(
    case_id: str, body: PauseIn, principal: Handler, service: Service, idempotency_key: IdempotencyKey = None
) -> CaseOut:
    case = await service.pause_clock(
        case_id=case_id,
        by=principal.subject,
        action_id=_action(principal, case_id, "pause", idempotency_key),
        scope=await scope_of(principal, service),
        reason=body.reason,
    )
    return await present(service, case)


@router.post("/disputes/{case_id}/clock/resume", response_model=CaseOut, summary="Resume the mediation clock")
async def resume_clock(
    case_id: str, principal: Handler, service: Service, idempotency_key: IdempotencyKey = None
) -> CaseOut:
    case = await service.resume_clock(
        case_id=case_id,
        by=principal.subject,
        action_id=_action(principal, case_id, "resume", idempotency_key),
        scope=await scope_of(principal, service),
    )
    return await present(service, case)


@router.post(
    "/disputes/{case_id}/clock/extend",
    response_model=CaseOut,
    summary="Extend the mediation clock once, by consent",
)
async def extend_clock(
    case_id: str, body: ExtendIn, principal: Handler, service: Service, idempotency_key: IdempotencyKey = None
) -> CaseOut:
    case = await service.extend_clock(
        case_id=case_id,
        by=principal.subject,
        action_id=_action(principal, case_id, "extend", idempotency_key),
        scope=await scope_of(principal, service),
        days=body.days,
        applicant_consent=body.applicant_consent,
        respondent_consent=body.respondent_consent,
        consent_record=body.consent_record,
    )
    return await present(service, case)


@router.post(
    "/disputes/{case_id}/nominations",
    status_code=202,
    response_model=NominationOut,
    summary="Nominate an archived (or withdrawn) case for the typical-case library",
)
async def nominate(
    case_id: str,
    principal: Handler,
    service: Service,
    body: NominationIn | None = None,
    idempotency_key: IdempotencyKey = None,
) -> NominationOut:
    case = await service.nominate(
        case_id=case_id,
        by=principal.subject,
        action_id=_action(principal, case_id, "nominate", idempotency_key),
        scope=await scope_of(principal, service),
        note=body.note if body else "",
    )
    assert case.nominated_at is not None
    await service.audit(
        case=case,
        subject=principal.subject,
        role=principal.role,
        action="document",
        purpose="推荐典型案例：生成供案例库使用的文本",
    )
    return NominationOut(
        case_id=case.id,
        nominated=True,
        nominated_at=case.nominated_at,
        message_zh="已推荐至典型案例库，待司法局审核发布",
    )


# -- the audit log (bureau, admin) ------------------------------------------------------------
@router.get(
    "/audit",
    response_model=AuditPageOut,
    tags=["audit"],
    summary="Who read which case, revealed personal data or filed a document (bureau, admin)",
    description=(
        "Entries of the token's counties, oldest first; with case_id, those of the case (a case "
        "outside the counties answers as if it had no audit). Pass next_cursor as cursor for the "
        "next page. The log is append-only: no route changes or removes an entry."
    ),
)
async def audit_log(
    principal: Auditor,
    service: Service,
    case_id: Annotated[str | None, Query(max_length=100)] = None,
    since: Annotated[datetime | None, Query(description="from this moment (inclusive)")] = None,
    until: Annotated[datetime | None, Query(description="before this moment")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> AuditPageOut:
    scope = await scope_of(principal, service)
    if scope.organisations is not None:
        # The counties' log is the bureau's; a token of one organisation reads only the
        # audit of a case it sees (audit entries name the county, not the organisation).
        if case_id is None:
            raise Forbidden(
                "请指定本组织的案件查询审计记录", "name a case of your organisation to read its audit"
            )
        if await service.repo.get_case_in(case_id, scope) is None:
            return AuditPageOut(entries=[], next_cursor=None)
    page = await service.audit_page(
        counties=frozenset(principal.counties),
        case_id=case_id,
        since=since,
        until=until,
        cursor=cursor,
        limit=limit,
    )
    return AuditPageOut(
        entries=[
            AuditEntryOut(
                **{k: v for k, v in e.items() if k != "_id"},
                action_label=ACTIONS.get(e["action"], (e["action"],))[0],
            )
            for e in page.entries
        ],
        next_cursor=page.next_cursor,
    )
