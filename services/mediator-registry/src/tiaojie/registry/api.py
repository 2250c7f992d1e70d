"""Registry's HTTP routes: thin adapters from requests to the rules.

Every route is scoped by the caller's reach (access.py): its counties (an administrator's
too) and, for a token naming an organisation, that organisation and those under it. A
record outside it answers 404 exactly like a missing one; a change it may not make to a
record it sees, 403. tests/security/test_registry_scope.py calls every route of this
router as a stranger.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from tiaojie.contracts.common import Role
from tiaojie.registry import access as rules
from tiaojie.registry.access import Access
from tiaojie.registry.assignment import AssignmentService
from tiaojie.registry.compliance import report_csv
from tiaojie.registry.eligibility import REASONS, effective_status, ineligibility, suspended_until
from tiaojie.registry.importing import ImportReport, RosterImporter
from tiaojie.registry.models import (
    COMMITTEES,
    DecisionDoc,
    DisciplineIn,
    DisciplineRecord,
    MediatorDoc,
    MediatorIn,
    OrganisationDoc,
    OrganisationIn,
    StatusIn,
    TrainingIn,
    TrainingRecord,
)
from tiaojie.registry.service import RegistryService
from tiaojie.runtime.auth import Principal, require_roles
from tiaojie.runtime.errors import FieldError, Invalid, NotFound

router = APIRouter(prefix="/api/v1", tags=["registry"])


def get_service(request: Request) -> RegistryService:
    return request.app.state.registry


def get_assignments(request: Request) -> AssignmentService:
    return request.app.state.assignments


def get_importer(request: Request) -> RosterImporter:
    return request.app.state.importer


Service = Annotated[RegistryService, Depends(get_service)]
Assignments = Annotated[AssignmentService, Depends(get_assignments)]
Importer = Annotated[RosterImporter, Depends(get_importer)]
Admin = Annotated[Principal, Depends(require_roles(Role.BUREAU, Role.ADMIN))]
Centre = Annotated[Principal, Depends(require_roles(Role.BUREAU, Role.ADMIN, Role.CENTER))]
Staff = Annotated[
    Principal, Depends(require_roles(Role.BUREAU, Role.ADMIN, Role.CENTER, Role.DESK, Role.MEDIATOR))
]


async def reach(principal: Principal, service: RegistryService) -> Access:
    """What the caller sees and may change: its token's counties, whatever its role, and
    its organisation (with those under it) when the token names one."""
    return await service.access_for(
        counties=principal.counties,
        organisation_id=principal.organisation_id,
        mediator_id=(principal.mediator_id or "") if principal.role == Role.MEDIATOR else None,
    )


# -- views -------------------------------------------------------------------------------


class ReasonOut(BaseModel):
    code: str
    message_zh: str
    message_en: str


def reasons_out(codes: list[str]) -> list[ReasonOut]:
    return [ReasonOut(code=c, message_zh=REASONS[c][0], message_en=REASONS[c][1]) for c in codes]


class MediatorOut(BaseModel):
    """A mediator as staff see it: identity masked, eligibility and load computed now."""

    id: str
    version: int
    name: str
    id_number_masked: str | None
    phone_masked: str | None
    county: str
    organisation_ids: list[str]
    full_time: bool
    government_purchased: bool
    backgrounds: list[str]
    specialties: list[str]
    languages: list[str]
    grade: str | None
    grade_level: str | None
    graded_on: date | None
    service_started_on: date | None
    certificate_number: str | None
    certificate_issued_on: date | None
    certificate_expires_on: date | None
    status: str
    status_reason: str | None
    effective_status: str
    suspended_until: date | None
    eligible: bool
    ineligible_reasons: list[ReasonOut]
    capacity: int
    load: int
    relations: int
    training: list[TrainingRecord]
    training_hours_this_year: float
    discipline: list[DisciplineRecord]
    updated_at: datetime | None

    @classmethod
    def of(cls, m: MediatorDoc, *, today: date, load: int, capacity: int) -> MediatorOut:
        reasons = ineligibility(m, today=today)
        return cls(
            id=m.id,
            version=m.version,
            name=m.name,
            id_number_masked=m.id_number_masked,
            phone_masked=m.phone_masked,
            county=m.county,
            organisation_ids=m.organisation_ids,
            full_time=m.full_time,
            government_purchased=m.government_purchased,
            backgrounds=[str(b) for b in m.backgrounds],
            specialties=[str(s) for s in m.specialties],
            languages=m.languages,
            grade=str(m.grade) if m.grade else None,
            grade_level=str(m.grade_level) if m.grade_level else None,
            graded_on=m.graded_on,
            service_started_on=m.service_started_on,
            certificate_number=m.certificate_number,
            certificate_issued_on=m.certificate_issued_on,
            certificate_expires_on=m.certificate_expires_on,
            status=str(m.status),
            status_reason=m.status_reason,
            effective_status=str(effective_status(m, today=today)),
            suspended_until=suspended_until(m, today=today),
            eligible=not reasons,
            ineligible_reasons=reasons_out(reasons),
            capacity=capacity,
            load=load,
            relations=len(m.relations),
            training=m.training,
            training_hours_this_year=sum(t.hours for t in m.training if t.on.year == today.year),
            discipline=m.discipline,
            updated_at=m.updated_at,
        )


async def mediator_out(service: Service, assignments: AssignmentService, m: MediatorDoc) -> MediatorOut:
    return MediatorOut.of(
        m,
        today=service.clock.now().date(),
        load=await service.repo.load(m.id),
        capacity=assignments.policy.capacity(m),
    )


class OrganisationOut(OrganisationDoc):
    members: int | None = None
    member_check: str | None = Field(default=None, description="ok | too_few | too_many (committees of 3-9)")


class HistoryOut(BaseModel):
    version: int
    at: datetime
    by: str
    action: str
    changes: dict[str, Any]


class ReassignIn(BaseModel):
    """A centre user's reassignment: to whom and why."""

    model_config = {"extra": "forbid", "str_strip_whitespace": True}

    mediator_id: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=2, max_length=500)
    override_capacity: bool = False


class CaseAssignmentOut(BaseModel):
    case_id: str
    county: str | None
    organisation_id: str | None
    mediator_id: str | None
    open: bool
    load_counted: bool
    decisions: list[DecisionDoc]


# -- organisations -------------------------------------------------------------------------


@router.post("/organisations", response_model=OrganisationDoc, summary="File or update an organisation")
async def file_organisation(
    data: OrganisationIn, principal: Admin, service: Service, response: Response
) -> OrganisationDoc:
    filed = await service.file_organisation(
        data=data, by=principal.subject, access=await reach(principal, service)
    )
    response.status_code = 201 if filed.outcome == "created" else 200
    return filed.record


@router.get("/organisations", response_model=list[OrganisationDoc], summary="Organisations of a county")
async def list_organisations(county: str, principal: Staff, service: Service) -> list[OrganisationDoc]:
    if not (await reach(principal, service)).sees_county(county):
        return []
    return await service.repo.organisations_in(county)


@router.get("/organisations/{organisation_id}", response_model=OrganisationOut, summary="An organisation")
async def get_organisation(organisation_id: str, principal: Staff, service: Service) -> OrganisationOut:
    org = await service.organisation(organisation_id, access=await reach(principal, service))
    out = OrganisationOut.model_validate(org.model_dump())
    if org.kind in COMMITTEES:
        members = len(await service.repo.member_ids(org.id))
        settings = service.settings
        out.members = members
        out.member_check = (
            "too_few"
            if members < settings.committee_min_members
            else "too_many"
            if members > settings.committee_max_members
            else "ok"
        )
    return out


@router.get(
    "/organisations/{organisation_id}/history",
    response_model=list[HistoryOut],
    summary="Who changed what, when",
)
async def organisation_history(organisation_id: str, principal: Centre, service: Service) -> list[Any]:
    org = await service.organisation(organisation_id, access=await reach(principal, service))
    return await service.history(entity="organisation", entity_id=org.id)


# -- mediators -----------------------------------------------------------------------------


@router.post("/mediators", response_model=MediatorOut, summary="Register or update a mediator")
async def register_mediator(
    data: MediatorIn, principal: Admin, service: Service, assignments: Assignments, response: Response
) -> MediatorOut:
    filed = await service.register_mediator(
        data=data, by=principal.subject, access=await reach(principal, service)
    )
    response.status_code = 201 if filed.outcome == "created" else 200
    return await mediator_out(service, assignments, filed.record)


@router.get("/mediators", response_model=list[MediatorOut], summary="Mediators of a county or organisation")
async def list_mediators(
    principal: Staff,
    service: Service,
    assignments: Assignments,
    county: str | None = None,
    organisation_id: str | None = None,
) -> list[MediatorOut]:
    access = await reach(principal, service)
    if organisation_id:
        found = await service.repo.mediators_of(organisation_id)
    elif county:
        found = await service.repo.mediators_in(county)
    else:
        raise Invalid(
            [FieldError("county", "missing", "请指定县区或调解组织", "give a county or an organisation")]
        )
    visible = [m for m in found if access.sees_mediator(m)]
    return [await mediator_out(service, assignments, m) for m in visible]


@router.get(
    "/mediators/{mediator_id}", response_model=MediatorOut, summary="A mediator, eligibility computed now"
)
async def get_mediator(
    mediator_id: str, principal: Staff, service: Service, assignments: Assignments
) -> MediatorOut:
    m = await service.mediator(mediator_id, access=await reach(principal, service))
    return await mediator_out(service, assignments, m)


@router.get(
    "/mediators/{mediator_id}/history", response_model=list[HistoryOut], summary="Who changed what, when"
)
async def mediator_history(mediator_id: str, principal: Centre, service: Service) -> list[Any]:
    m = await service.mediator(mediator_id, access=await reach(principal, service))
    return await service.history(entity="mediator", entity_id=m.id)


@router.post(
    "/mediators/{mediator_id}/status", response_model=MediatorOut, summary="Suspend, revoke, reinstate"
)
async def set_status(
    mediator_id: str, change: StatusIn, principal: Admin, service: Service, assignments: Assignments
) -> MediatorOut:
    filed = await service.set_status(
        mediator_id=mediator_id, change=change, by=principal.subject, access=await reach(principal, service)
    )
    return await mediator_out(service, assignments, filed.record)


@router.post(
    "/mediators/{mediator_id}/training",
    response_model=MediatorOut,
    status_code=201,
    summary="Record training",
)
async def add_training(
    mediator_id: str, record: TrainingIn, principal: Admin, service: Service, assignments: Assignments
) -> MediatorOut:
    filed = await service.add_training(
        mediator_id=mediator_id, record=record, by=principal.subject, access=await reach(principal, service)
    )
    return await mediator_out(service, assignments, filed.record)


@router.post(
    "/mediators/{mediator_id}/discipline",
    response_model=MediatorOut,
    status_code=201,
    summary="Record a disciplinary sanction",
)
async def add_discipline(
    mediator_id: str, record: DisciplineIn, principal: Admin, service: Service, assignments: Assignments
) -> MediatorOut:
    filed = await service.add_discipline(
        mediator_id=mediator_id, record=record, by=principal.subject, access=await reach(principal, service)
    )
    return await mediator_out(service, assignments, filed.record)


# -- imports ---------------------------------------------------------------------------------


@router.post(
    "/imports/{kind}",
    response_model=ImportReport,
    summary="Import organisations or mediators from .xlsx or .csv (the file is the request body)",
    responses={422: {"description": "the file has errors; nothing was imported (the report says why)"}},
)
async def import_roster(
    kind: str,
    request: Request,
    principal: Admin,
    importer: Importer,
    service: Service,
    dry_run: Annotated[bool, Query(description="check every row and import nothing")] = True,
    format: Annotated[str | None, Query(pattern="^(xlsx|csv)$")] = None,
) -> JSONResponse:
    if kind not in ("organisations", "mediators"):
        raise NotFound("导入类型", "import kind")
    report = await importer.run(
        kind=kind,
        content=await request.body(),
        fmt=format,
        dry_run=dry_run,
        by=f"import:{principal.subject}",
        access=await reach(principal, service),
    )
    status = 200 if report.clean or dry_run else 422
    return JSONResponse(report.model_dump(mode="json"), status_code=status)


# -- assignments -----------------------------------------------------------------------------


@router.get(
    "/cases/{case_id}/assignment",
    response_model=CaseAssignmentOut,
    summary="Who holds a case and every decision, with its explanation",
)
async def case_assignment(
    case_id: str, principal: Staff, service: Service, assignments: Assignments
) -> CaseAssignmentOut:
    access = await reach(principal, service)
    rules.require_case(access, await service.repo.get_case(case_id))
    case, decisions = await assignments.case_assignment(case_id=case_id, counties=sorted(access.counties))
    return CaseAssignmentOut(
        case_id=case.id,
        county=case.county,
        organisation_id=case.organisation_id,
        mediator_id=case.mediator_id,
        open=not case.closed,
        load_counted=case.holder is not None,
        decisions=decisions,
    )


@router.post(
    "/cases/{case_id}/assignment",
    response_model=DecisionDoc,
    status_code=201,
    summary="Reassign a case to another mediator (centre users), with a reason",
)
async def reassign(
    case_id: str,
    body: ReassignIn,
    principal: Centre,
    service: Service,
    assignments: Assignments,
    idempotency_key: Annotated[str | None, Header(max_length=100)] = None,
) -> DecisionDoc:
    access = await reach(principal, service)
    case = rules.require_case(access, await service.repo.get_case(case_id))
    rules.reassignment(access, case=case, mediator=await service.repo.get_mediator(body.mediator_id))
    return await assignments.reassign(
        case_id=case_id,
        mediator_id=body.mediator_id,
        reason=body.reason,
        by=principal.subject,
        counties=sorted(access.counties),
        override_capacity=body.override_capacity,
        idempotency_key=idempotency_key,
    )


# -- compliance ------------------------------------------------------------------------------


@router.get(
    "/compliance",
    summary="Staffing, certificates, training and grades of a county against the norms (JSON or CSV)",
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
)
async def compliance(
    principal: Centre,
    service: Service,
    county: str | None = None,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Response:
    access = await reach(principal, service)
    if county is None:
        if len(access.counties) != 1:
            raise Invalid([FieldError("county", "missing", "请指定县区", "give a county")])
        [county] = access.counties
    if not access.sees_county(county):
        raise NotFound("县区", "county")
    report = await service.compliance(county=county, access=access)
    if format == "csv":
        return Response(
            report_csv(report).encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="compliance-{county}-{report["as_of"]}.csv"'
            },
        )
    return JSONResponse(report)
