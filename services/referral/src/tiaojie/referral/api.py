"""Referral's HTTP routes: agencies, referrals (also for agencies without Kafka), transfers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from tiaojie.contracts.common import Role
from tiaojie.contracts.referral import AgencyReferralSubmitted
from tiaojie.referral.models import AgencyDoc, ReferralDoc, TransferDoc
from tiaojie.referral.schemas import (
    AcceptIn,
    AgencyIn,
    AgencyOut,
    DeclineIn,
    ExtendIn,
    HopsOut,
    ReferralOut,
    TransferIn,
    TransferOut,
)
from tiaojie.referral.service import ReferralService
from tiaojie.runtime.auth import Principal, require_roles
from tiaojie.runtime.errors import FieldError, Invalid

router = APIRouter(prefix="/api/v1")


def get_service(request: Request) -> ReferralService:
    return request.app.state.referral


Service = Annotated[ReferralService, Depends(get_service)]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Staff = Annotated[
    Principal, Depends(require_roles(Role.DESK, Role.CENTER, Role.BUREAU, Role.MEDIATOR, Role.ADMIN))
]
Deciding = Annotated[Principal, Depends(require_roles(Role.DESK, Role.CENTER, Role.BUREAU, Role.ADMIN))]
Agency = Annotated[Principal, Depends(require_roles(Role.AGENCY))]
Reader = Annotated[
    Principal,
    Depends(require_roles(Role.AGENCY, Role.DESK, Role.CENTER, Role.BUREAU, Role.MEDIATOR, Role.ADMIN)),
]


# -- agencies ---------------------------------------------------------------------------------


@router.post(
    "/agencies",
    status_code=201,
    response_model=AgencyOut,
    tags=["agencies"],
    summary="Register an agency (court, police, petition bureau, hotline, department) or a "
    "submitting system: its topics, its broker credential (in this answer only) and ACLs",
    responses={
        200: {"model": AgencyOut, "description": "already registered with the same details (no credential)"},
        409: {},
        422: {},
        503: {"description": "the broker provisioning principal is not configured"},
    },
)
async def register_agency(
    body: AgencyIn, principal: Admin, service: Service, response: Response
) -> AgencyOut:
    if body.county not in principal.counties:
        raise Invalid(
            [FieldError("county", "county_out_of_scope", "无权为该县区登记机构", "not your county")]
        )
    agency, created, credential = await service.register_agency(
        agency_id=body.id,
        kind=body.kind,
        county=body.county,
        name=body.name,
        source=body.source,
        by=principal.subject,
        counties=principal.counties,
    )
    response.headers["Cache-Control"] = "no-store"
    if not created:
        response.status_code = 200
    return AgencyOut.of(agency, service.settings, credential)


@router.post(
    "/agencies/{agency_id}/credentials",
    response_model=AgencyOut,
    tags=["agencies"],
    summary="Rotate an agency's broker credential: a new password, shown once; the old one stops working",
    responses={404: {}, 409: {"description": "deactivated, or another change came first"}, 503: {}},
)
async def rotate_agency_credential(
    agency_id: str, principal: Admin, service: Service, response: Response
) -> AgencyOut:
    agency, credential = await service.rotate_credential(
        agency_id=agency_id, counties=principal.counties, by=principal.subject
    )
    response.headers["Cache-Control"] = "no-store"
    return AgencyOut.of(agency, service.settings, credential)


@router.post(
    "/agencies/{agency_id}/deactivate",
    response_model=AgencyOut,
    tags=["agencies"],
    summary="Deactivate an agency: its broker credential and ACLs are removed, its referrals refused",
    responses={404: {}, 409: {}, 503: {}},
)
async def deactivate_agency(agency_id: str, principal: Admin, service: Service) -> AgencyOut:
    agency = await service.deactivate_agency(
        agency_id=agency_id, counties=principal.counties, by=principal.subject
    )
    return AgencyOut.of(agency, service.settings)


@router.get(
    "/agencies",
    response_model=list[AgencyOut],
    tags=["agencies"],
    summary="Agencies of the caller's counties",
)
async def list_agencies(principal: Staff, service: Service) -> list[AgencyOut]:
    return [
        AgencyOut.of(a, service.settings) for a in await service.list_agencies(counties=principal.counties)
    ]


# -- referrals ------------------------------------------------------------------------------


async def _agency_of(principal: Principal, service: ReferralService) -> AgencyDoc:
    return await service.referring_agency(agency_id=principal.agency_id)


@router.post(
    "/referrals",
    status_code=201,
    response_model=ReferralOut,
    tags=["referrals"],
    summary="An agency refers a dispute (the HTTP twin of agency.<id>.referrals.v1)",
    responses={200: {"model": ReferralOut, "description": "the same agency_ref again"}, 403: {}, 422: {}},
)
async def submit_referral(
    body: AgencyReferralSubmitted, principal: Agency, service: Service, response: Response
) -> ReferralOut:
    agency = await _agency_of(principal, service)
    doc, created = await service.receive(agency=agency, data=body, event_id=None)
    if not created:
        response.status_code = 200
    return ReferralOut.of(doc, duplicate=not created)


@router.get(
    "/referrals/{referral_id}", response_model=ReferralOut, tags=["referrals"], summary="One referral"
)
async def get_referral(referral_id: str, principal: Reader, service: Service) -> ReferralOut:
    if principal.role == Role.AGENCY:
        agency = await _agency_of(principal, service)
        return ReferralOut.of(await service.referral_for(referral_id, counties=None, agency_id=agency.id))
    return ReferralOut.of(
        await service.referral_for(
            referral_id, counties=principal.counties, agency_id=None, acting_for=principal.organisation_id
        )
    )


@router.get(
    "/referrals",
    response_model=list[ReferralOut],
    tags=["referrals"],
    summary="Referrals to a county, or an agency's own",
)
async def list_referrals(
    principal: Reader,
    service: Service,
    county: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
) -> list[ReferralOut]:
    if principal.role == Role.AGENCY:
        agency = await _agency_of(principal, service)
        docs = await service.referrals_of(agency_id=agency.id)
    else:
        counties = [county] if county else principal.counties
        docs = await service.referrals_to(
            counties=[c for c in counties if c in principal.counties],
            status=status,
            acting_for=principal.organisation_id,
        )
    return [ReferralOut.of(d) for d in docs]


@router.post(
    "/referrals/{referral_id}/accept",
    response_model=ReferralOut,
    tags=["referrals"],
    summary="Accept (opens the case)",
)
async def accept_referral(
    referral_id: str, principal: Deciding, service: Service, body: AcceptIn | None = None
) -> ReferralOut:
    doc = await service.accept_referral(
        referral_id=referral_id,
        by=principal.subject,
        counties=principal.counties,
        organisation_id=body.organisation_id if body else None,
        acting_for=principal.organisation_id,
    )
    return ReferralOut.of(doc)


@router.post(
    "/referrals/{referral_id}/decline",
    response_model=ReferralOut,
    tags=["referrals"],
    summary="Decline with a reason",
)
async def decline_referral(
    referral_id: str, body: DeclineIn, principal: Deciding, service: Service
) -> ReferralOut:
    doc = await service.decline_referral(
        referral_id=referral_id,
        by=principal.subject,
        counties=principal.counties,
        reason=body.reason,
        acting_for=principal.organisation_id,
    )
    return ReferralOut.of(doc)


@router.post(
    "/referrals/{referral_id}/extend",
    response_model=ReferralOut,
    tags=["referrals"],
    summary="Extend the handling deadline",
)
async def extend_referral(
    referral_id: str, body: ExtendIn, principal: Deciding, service: Service
) -> ReferralOut:
    doc = await service.extend(
        subject_kind="referral",
        subject_id=referral_id,
        by=principal.subject,
        counties=principal.counties,
        days=body.days,
        by_agreement=body.by_agreement,
        reason=body.reason,
        acting_for=principal.organisation_id,
    )
    assert isinstance(doc, ReferralDoc)
    return ReferralOut.of(doc)


# -- transfers ------------------------------------------------------------------------------


@router.post(
    "/transfers",
    status_code=201,
    response_model=TransferOut,
    tags=["transfers"],
    summary="转办 / 交办 / 上报 a case to another body",
    responses={
        200: {"model": TransferOut, "description": "replay of the same Idempotency-Key"},
        404: {},
        409: {},
        422: {},
    },
)
async def request_transfer(
    body: TransferIn,
    principal: Deciding,
    service: Service,
    response: Response,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> TransferOut:
    doc, created = await service.request_transfer(
        case_id=body.case_id,
        kind=body.kind,
        to_organisation_id=body.to_organisation_id,
        reason=body.reason,
        reason_code=body.reason_code,
        due_days=body.due_days,
        by=principal.subject,
        counties=principal.counties,
        key=idempotency_key,
        acting_for=principal.organisation_id,
    )
    if not created:
        response.status_code = 200
    return TransferOut.of(doc)


@router.get(
    "/transfers/{transfer_id}", response_model=TransferOut, tags=["transfers"], summary="One transfer"
)
async def get_transfer(transfer_id: str, principal: Staff, service: Service) -> TransferOut:
    return TransferOut.of(
        await service.transfer_for(
            transfer_id, counties=principal.counties, acting_for=principal.organisation_id
        )
    )


@router.post(
    "/transfers/{transfer_id}/accept",
    response_model=TransferOut,
    tags=["transfers"],
    summary="The receiving body accepts",
)
async def accept_transfer(transfer_id: str, principal: Deciding, service: Service) -> TransferOut:
    return TransferOut.of(
        await service.accept_transfer(
            transfer_id=transfer_id,
            by=principal.subject,
            counties=principal.counties,
            acting_for=principal.organisation_id,
        )
    )


@router.post(
    "/transfers/{transfer_id}/decline",
    response_model=TransferOut,
    tags=["transfers"],
    summary="The receiving body declines",
)
async def decline_transfer(
    transfer_id: str, body: DeclineIn, principal: Deciding, service: Service
) -> TransferOut:
    return TransferOut.of(
        await service.decline_transfer(
            transfer_id=transfer_id,
            by=principal.subject,
            counties=principal.counties,
            reason=body.reason,
            acting_for=principal.organisation_id,
        )
    )


@router.post(
    "/transfers/{transfer_id}/extend",
    response_model=TransferOut,
    tags=["transfers"],
    summary="Extend a 交办 deadline",
)
async def extend_transfer(
    transfer_id: str, body: ExtendIn, principal: Deciding, service: Service
) -> TransferOut:
    doc = await service.extend(
        subject_kind="transfer",
        subject_id=transfer_id,
        by=principal.subject,
        counties=principal.counties,
        days=body.days,
        by_agreement=body.by_agreement,
        reason=body.reason,
        acting_for=principal.organisation_id,
    )
    assert isinstance(doc, TransferDoc)
    return TransferOut.of(doc)


@router.get(
    "/cases/{case_id}/hops", response_model=HopsOut, tags=["transfers"], summary="Every hand-over of a case"
)
async def case_hops(case_id: str, principal: Staff, service: Service) -> HopsOut:
    referrals, transfers = await service.hops(
        case_id=case_id, counties=principal.counties, acting_for=principal.organisation_id
    )
    return HopsOut(
        case_id=case_id,
        referrals=[ReferralOut.of(r) for r in referrals],
        transfers=[TransferOut.of(t) for t in transfers],
    )
