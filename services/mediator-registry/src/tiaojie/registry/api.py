"""Registry's HTTP routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from tiaojie.contracts.common import Role
from tiaojie.registry.models import MediatorDoc, MediatorIn, OrganisationDoc, OrganisationIn
from tiaojie.registry.service import RegistryService, eligible
from tiaojie.runtime.auth import Principal, require_roles
from tiaojie.runtime.errors import FieldError, Invalid, NotFound

router = APIRouter(prefix="/api/v1", tags=["registry"])


def get_service(request: Request) -> RegistryService:
    return request.app.state.registry


Service = Annotated[RegistryService, Depends(get_service)]
Admin = Annotated[Principal, Depends(require_roles(Role.BUREAU, Role.ADMIN))]
Staff = Annotated[
    Principal, Depends(require_roles(Role.BUREAU, Role.ADMIN, Role.CENTER, Role.DESK, Role.MEDIATOR))
]


class MediatorOut(BaseModel):
    id: str
    version: int
    name: str
    county: str
    organisation_ids: list[str]
    grade: str | None
    status: str
    full_time: bool
    specialties: list[str]
    certificate_number: str | None
    certificate_expires_on: str | None
    eligible: bool
    load: int

    @classmethod
    def of(cls, m: MediatorDoc, *, is_eligible: bool) -> MediatorOut:
        return cls(
            id=m.id,
            version=m.version,
            name=m.name,
            county=m.county,
            organisation_ids=m.organisation_ids,
            grade=m.grade,
            status=m.status,
            full_time=m.full_time,
            specialties=list(m.specialties),
            certificate_number=m.certificate_number,
            certificate_expires_on=m.certificate_expires_on.isoformat() if m.certificate_expires_on else None,
            eligible=is_eligible,
            load=len(m.active_cases),
        )


def _in_scope(principal: Principal, county: str) -> None:
    if principal.role != Role.ADMIN and county not in principal.counties:
        raise Invalid(
            [FieldError("county", "county_out_of_scope", "无权管理该县区", "county outside your scope")]
        )


@router.post("/organisations", response_model=OrganisationDoc, summary="File or update an organisation")
async def file_organisation(data: OrganisationIn, principal: Admin, service: Service) -> OrganisationDoc:
    _in_scope(principal, data.county)
    return await service.file_organisation(data=data, by=principal.subject)


@router.get("/organisations", response_model=list[OrganisationDoc], summary="Organisations of a county")
async def list_organisations(county: str, principal: Staff, service: Service) -> list[OrganisationDoc]:
    if principal.role != Role.ADMIN and county not in principal.counties:
        return []
    return await service.repo.organisations_in(county)


@router.post("/mediators", response_model=MediatorOut, summary="Register or update a mediator")
async def register_mediator(data: MediatorIn, principal: Admin, service: Service) -> MediatorOut:
    _in_scope(principal, data.county)
    m = await service.register_mediator(data=data, by=principal.subject)
    return MediatorOut.of(m, is_eligible=eligible(m, today=service.clock.now().date()))


@router.get(
    "/mediators/{mediator_id}", response_model=MediatorOut, summary="A mediator, eligibility computed now"
)
async def get_mediator(mediator_id: str, principal: Staff, service: Service) -> MediatorOut:
    m = await service.repo.get_mediator(mediator_id)
    if m is None or (principal.role != Role.ADMIN and m.county not in principal.counties):
        raise NotFound("调解员", "mediator")
    return MediatorOut.of(m, is_eligible=eligible(m, today=service.clock.now().date()))
