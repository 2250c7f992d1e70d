"""Intake's HTTP routes: thin adapters from requests to the rules."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel, Field

from tiaojie.contracts.common import (
    CASE_STATUS_LABELS,
    CaseStatus,
    Category,
    Channel,
    RiskLevel,
    Role,
)
from tiaojie.contracts.intake import DisputeSubmission
from tiaojie.intake.models import CaseDoc
from tiaojie.intake.service import IntakeService, case_id_for
from tiaojie.runtime.auth import Principal, require_roles
from tiaojie.runtime.errors import FieldError, Invalid, NotFound

router = APIRouter(prefix="/api/v1", tags=["disputes"])


class AssignmentOut(BaseModel):
    mediator_id: str
    mediator_name: str
    organisation_id: str
    assigned_at: datetime
    reason: str = ""


class CaseOut(BaseModel):
    """A case as staff see it (personal data is not part of this view)."""

    id: str
    tracking_code: str
    status: CaseStatus
    status_label: str
    channel: Channel
    county: str
    township: str | None
    category: Category
    category_confidence: float
    risk_level: RiskLevel
    risk_signals: list[str]
    organisation_id: str | None
    assignment: AssignmentOut | None
    received_at: datetime
    acceptance_due: datetime | None
    parties_count: int
    duplicate: bool = Field(default=False, description="true when this answer replays an earlier submission")

    @classmethod
    def of(cls, case: CaseDoc, *, duplicate: bool = False) -> CaseOut:
        return cls(
            id=case.id,
            tracking_code=case.tracking_code,
            status=case.status,
            status_label=CASE_STATUS_LABELS[case.status],
            channel=case.channel,
            county=case.county,
            township=case.township,
            category=case.category,
            category_confidence=case.category_confidence,
            risk_level=case.risk_level,
            risk_signals=case.risk_signals,
            organisation_id=case.organisation_id,
            assignment=AssignmentOut(**case.assignment.model_dump()) if case.assignment else None,
            received_at=case.received_at,
            acceptance_due=case.acceptance_due,
            parties_count=len(case.parties),
            duplicate=duplicate,
        )


def get_service(request: Request) -> IntakeService:
    return request.app.state.intake


Service = Annotated[IntakeService, Depends(get_service)]
Staff = Annotated[
    Principal, Depends(require_roles(Role.DESK, Role.CENTER, Role.BUREAU, Role.MEDIATOR, Role.ADMIN))
]
Registrar = Annotated[Principal, Depends(require_roles(Role.DESK, Role.CENTER, Role.ADMIN))]


@router.post(
    "/disputes",
    status_code=201,
    response_model=CaseOut,
    summary="Register a dispute (desk, hotline, web and mobile channels)",
    responses={
        200: {"model": CaseOut, "description": "replay of an earlier submission"},
        409: {},
        413: {},
        422: {},
    },
)
async def submit_dispute(
    submission: DisputeSubmission,
    principal: Registrar,
    service: Service,
    response: Response,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> CaseOut:
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
    case_id = case_id_for(scope=f"http:{principal.subject}", key=idempotency_key) if idempotency_key else None
    result = await service.register(submission=submission, registered_by=principal.subject, case_id=case_id)
    if not result.created:
        response.status_code = 200
    return CaseOut.of(result.case, duplicate=not result.created)


@router.get("/disputes/{case_id}", response_model=CaseOut, summary="A case of the caller's counties")
async def get_dispute(case_id: str, principal: Staff, service: Service) -> CaseOut:
    case = await service.repo.get_case_in(case_id, principal.counties)
    if case is None:
        raise NotFound("案件", "case")
    return CaseOut.of(case)
