"""Referral's HTTP bodies and answers (no personal data in any answer)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tiaojie.contracts import topics
from tiaojie.contracts.common import AgencyKind, Category
from tiaojie.contracts.referral import AGENCY_ID_PATTERN
from tiaojie.referral.broker import IssuedCredential
from tiaojie.referral.lifecycle import STATUS_LABELS, TRANSFER_KINDS
from tiaojie.referral.models import AgencyDoc, Extension, Hop, ReferralDoc, TransferDoc
from tiaojie.runtime.settings import RuntimeSettings


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
        cls, agency: AgencyDoc, settings: RuntimeSettings, credential: IssuedCredential | None = None
    ) -> AgencyOut:
        system = agency.kind == AgencyKind.SYSTEM
        return cls(
            id=agency.id,
            kind=agency.kind,
            county=agency.county,
            name=agency.name,
            source=agency.source,
            active=agency.active,
            inbound_topic=settings.topic(
                topics.SUBMISSIONS if system else topics.agency_referrals(agency.id)
            ),
            outbound_topic=None if system else settings.topic(topics.agency_outcomes(agency.id)),
            kafka_principal=agency.kafka_principal,
            registered_at=agency.registered_at,
            kafka=KafkaAccessOut.of(credential),
        )


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


class HopsOut(BaseModel):
    case_id: str
    referrals: list[ReferralOut]
    transfers: list[TransferOut]
