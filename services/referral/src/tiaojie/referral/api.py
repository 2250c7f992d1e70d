"""Referral's HTTP routes: agencies, referrals (also for agencies without Kafka), transfers."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from tiaojie.contracts.common import AgencyKind, Category, Role
from tiaojie.contracts.referral import AGENCY_ID_PATTERN, AgencyReferralSubmitted
from tiaojie.referral.broker import IssuedCredential
from tiaojie.referral.lifecycle import STATUS_LABELS, TRANSFER_KINDS
from tiaojie.referral.models import AgencyDoc, Extension, Hop, ReferralDoc, TransferDoc
from tiaojie.referral.service import ReferralService
from tiaojie.runtime.auth import Principal, require_roles
from tiaojie.runtime.errors import FieldError, Forbidden, Invalid

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


class AgencyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(
        pattern=AGENCY_ID_PATTERN, description="lower-case letters, digits and '-'; names its topics"
    )
    kind: AgencyKind
    county: str = Field(pattern=r"^\d{6}$")
    name: str = Field(min_length=1, max_length=100)
    source: str | None = Field(
        default=None, max_length=200, pattern=r"^/[\x21-\x7e]+$", description='default "/agencies/<id>"'
    )


class KafkaAccessOut(BaseModel):
    """How the agency's system logs in to the broker (SASL/SCRAM). Shown once: the
    password is kept by the broker alone, salted; a lost one is replaced by rotation."""

    bootstrap: str
    security_protocol: str
    sasl_mechanism: str
    username: str
    password: str
    consumer_group_prefix: str | None = Field(
        default=None, description="consumer groups the agency may use (names starting with this)"
    )

    @classmethod
    def of(cls, credential: IssuedCredential | None) -> KafkaAccessOut | None:
        return cls(**dataclasses.asdict(credential)) if credential else None


class AgencyOut(BaseModel):
    id: str
    kind: AgencyKind
    county: str
    name: str
    source: str
    active: bool
    inbound_topic: str = Field(description="where it publishes (a system: the submissions topic)")
    outbound_topic: str | None = Field(description="where it hears back (a system: none)")
    kafka_principal: str | None = Field(default=None, description="its SCRAM user at the broker")
    registered_at: datetime
    kafka: KafkaAccessOut | None = Field(
        default=None, description="only in the answer that issued the credential"
    )

    @classmethod
    def of(
        cls, agency: AgencyDoc, service: ReferralService, credential: IssuedCredential | None = None
    ) -> AgencyOut:
        from tiaojie.contracts import topics

        system = agency.kind == AgencyKind.SYSTEM
        return cls(
            id=agency.id,
            kind=agency.kind,
            county=agency.county,
            name=agency.name,
            source=agency.source,
            active=agency.active,
            inbound_topic=service.settings.topic(
                topics.SUBMISSIONS if system else topics.agency_referrals(agency.id)
            ),
            outbound_topic=None if system else service.settings.topic(topics.agency_outcomes(agency.id)),
            kafka_principal=agency.kafka_principal,
            registered_at=agency.registered_at,
            kafka=KafkaAccessOut.of(credential),
        )


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
    )
    response.headers["Cache-Control"] = "no-store"
    if not created:
        response.status_code = 200
    return AgencyOut.of(agency, service, credential)


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
    return AgencyOut.of(agency, service, credential)


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
    return AgencyOut.of(agency, service)


@router.get(
    "/agencies",
    response_model=list[AgencyOut],
    tags=["agencies"],
    summary="Agencies of the caller's counties",
)
async def list_agencies(principal: Staff, service: Service) -> list[AgencyOut]:
    return [AgencyOut.of(a, service) for a in await service.repo.list_agencies(principal.counties)]


# -- referrals ------------------------------------------------------------------------------


class ReferralOut(BaseModel):
    """A referral as its sender and the receiving side see it (no personal data)."""

    id: str
    status: str
    status_label: str
    agency_id: str | None
    agency_kind: AgencyKind | None
    agency_ref: str | None
    referral_kind: str
    county: str
    township: str | None
    category: Category | None
    parties_count: int
    organisation_id: str | None
    requested_at: datetime
    response_due: datetime
    accepted_at: datetime | None
    due: datetime | None
    extensions: list[Extension]
    case_id: str | None
    decline_reason: str | None
    outcome: str | None
    closed_at: datetime | None
    agreement_summary: str
    judicial_confirmation_ready: bool
    overdue: bool
    overdue_stages: list[str]
    history: list[Hop]
    duplicate: bool = False

    @classmethod
    def of(cls, doc: ReferralDoc, *, duplicate: bool = False) -> ReferralOut:
        return cls(
            **doc.model_dump(
                include={
                    "id",
                    "status",
                    "agency_id",
                    "agency_kind",
                    "agency_ref",
                    "referral_kind",
                    "county",
                    "township",
                    "category",
                    "parties_count",
                    "organisation_id",
                    "requested_at",
                    "response_due",
                    "accepted_at",
                    "due",
                    "case_id",
                    "decline_reason",
                    "outcome",
                    "closed_at",
                    "agreement_summary",
                    "judicial_confirmation_ready",
                    "overdue",
                    "overdue_stages",
                }
            ),
            extensions=doc.extensions,
            history=doc.history,
            status_label=STATUS_LABELS.get(doc.status, doc.status),
            duplicate=duplicate,
        )


async def _agency_of(principal: Principal, service: ReferralService) -> AgencyDoc:
    agency = await service.repo.get_agency(principal.agency_id) if principal.agency_id else None
    if agency is None or not agency.active or agency.kind == AgencyKind.SYSTEM:
        raise Forbidden("该令牌不属于已登记的机构", "this token belongs to no registered, active agency")
    return agency


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
        await service.referral_for(referral_id, counties=principal.counties, agency_id=None)
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
        docs = await service.repo.referrals_of_agency(agency.id)
    else:
        counties = [county] if county else principal.counties
        docs = []
        for one in counties:
            if one in principal.counties:
                docs += await service.repo.referrals_in(one, status=status)
    return [ReferralOut.of(ReferralDoc.model_validate(d)) for d in docs]


class AcceptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    organisation_id: str | None = Field(
        default=None, max_length=100, description="hand it to another body of the county"
    )


class DeclineIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str = Field(min_length=2, max_length=500, description="returned to the sender")


class ExtendIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    days: int = Field(ge=1, le=90)
    by_agreement: bool = False
    reason: str = Field(default="", max_length=500)


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
        referral_id=referral_id, by=principal.subject, counties=principal.counties, reason=body.reason
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
    )
    assert isinstance(doc, ReferralDoc)
    return ReferralOut.of(doc)


# -- transfers ------------------------------------------------------------------------------


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    case_id: str = Field(min_length=1, max_length=100)
    kind: Literal["lateral", "assign_down", "escalate_up"] = Field(description="转办 / 交办 / 上报")
    to_organisation_id: str = Field(min_length=1, max_length=100)
    reason: str = Field(min_length=2, max_length=500)
    reason_code: str = Field(
        default="",
        max_length=40,
        description="上报: grave (重大) or cross_county; 转办: jurisdiction or category",
    )
    due_days: int | None = Field(default=None, ge=1, le=90, description="交办 only: the deadline in days")


class TransferOut(BaseModel):
    id: str
    case_id: str
    kind: str
    kind_label: str
    status: str
    status_label: str
    county: str
    from_organisation_id: str | None
    to_organisation_id: str
    reason_code: str
    reason: str
    requested_at: datetime
    response_due: datetime
    accepted_at: datetime | None
    due: datetime | None
    decline_reason: str | None
    outcome: str | None
    overdue: bool
    history: list[Hop]

    @classmethod
    def of(cls, doc: TransferDoc) -> TransferOut:
        return cls(
            **doc.model_dump(
                include={
                    "id",
                    "case_id",
                    "kind",
                    "status",
                    "county",
                    "from_organisation_id",
                    "to_organisation_id",
                    "reason_code",
                    "reason",
                    "requested_at",
                    "response_due",
                    "accepted_at",
                    "due",
                    "decline_reason",
                    "outcome",
                    "overdue",
                }
            ),
            history=doc.history,
            kind_label=TRANSFER_KINDS[doc.kind],
            status_label=STATUS_LABELS.get(doc.status, doc.status),
        )


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
    )
    if not created:
        response.status_code = 200
    return TransferOut.of(doc)


@router.get(
    "/transfers/{transfer_id}", response_model=TransferOut, tags=["transfers"], summary="One transfer"
)
async def get_transfer(transfer_id: str, principal: Staff, service: Service) -> TransferOut:
    return TransferOut.of(await service.transfer_for(transfer_id, counties=principal.counties))


@router.post(
    "/transfers/{transfer_id}/accept",
    response_model=TransferOut,
    tags=["transfers"],
    summary="The receiving body accepts",
)
async def accept_transfer(transfer_id: str, principal: Deciding, service: Service) -> TransferOut:
    return TransferOut.of(
        await service.accept_transfer(
            transfer_id=transfer_id, by=principal.subject, counties=principal.counties
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
            transfer_id=transfer_id, by=principal.subject, counties=principal.counties, reason=body.reason
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
    )
    assert isinstance(doc, TransferDoc)
    return TransferOut.of(doc)


class HopsOut(BaseModel):
    case_id: str
    referrals: list[ReferralOut]
    transfers: list[TransferOut]


@router.get(
    "/cases/{case_id}/hops", response_model=HopsOut, tags=["transfers"], summary="Every hand-over of a case"
)
async def case_hops(case_id: str, principal: Staff, service: Service) -> HopsOut:
    referrals, transfers = await service.hops(case_id=case_id, counties=principal.counties)
    return HopsOut(
        case_id=case_id,
        referrals=[ReferralOut.of(r) for r in referrals],
        transfers=[TransferOut.of(t) for t in transfers],
    )
