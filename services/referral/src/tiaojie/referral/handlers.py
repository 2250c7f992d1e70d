"""Referral's Kafka subscribers: thin adapters from events to the rules."""

from __future__ import annotations

from aiokafka import ConsumerRecord

from tiaojie.contracts import topics
from tiaojie.contracts.envelope import CloudEvent
from tiaojie.contracts.intake import (
    AgreementPerformed,
    CaseAccepted,
    CaseArchived,
    CaseAssignmentRecorded,
    CaseEvent,
    CaseFailed,
    CaseRegistered,
    CaseRejected,
    CaseResolved,
    CaseTransferred,
    CaseWithdrawn,
    DeadlineChanged,
    DuplicateLinked,
    FollowUpRecorded,
    RiskRaised,
    SessionRecorded,
)
from tiaojie.contracts.referral import AgencyReferralSubmitted
from tiaojie.contracts.registry import MediatorAssigned, OrganisationUpdated
from tiaojie.referral.inbound import AgencyInbound, inbound_pattern
from tiaojie.referral.service import ReferralService
from tiaojie.runtime.consumer import ReliableConsumer
from tiaojie.runtime.settings import RuntimeSettings

CASE_EVENTS: tuple[type[CaseEvent], ...] = (
    CaseAccepted,
    CaseRejected,
    CaseAssignmentRecorded,
    SessionRecorded,
    CaseResolved,
    CaseFailed,
    AgreementPerformed,
    FollowUpRecorded,
    CaseArchived,
    CaseWithdrawn,
    CaseTransferred,
    DeadlineChanged,
    DuplicateLinked,
    RiskRaised,
)


def register_handlers(
    consumer: ReliableConsumer, service: ReferralService, inbound: AgencyInbound, settings: RuntimeSettings
) -> None:
    async def on_agency_record(record: ConsumerRecord) -> None:
        """An agency's referral: every agency topic, including ones registered later."""
        await inbound.handle(
            topic=record.topic, value=record.value or b"", partition=record.partition, offset=record.offset
        )

    # One pattern subscription serves every agency: topics of agencies registered while the
    # service runs are found at the next metadata refresh, on every replica, and a topic
    # of an unknown agency is read and dead-lettered rather than ignored.
    consumer.on_pattern(inbound_pattern(settings), on_agency_record, documents=(AgencyReferralSubmitted,))

    @consumer.on(topics.ORGANISATIONS, OrganisationUpdated)
    async def on_organisation_updated(event: CloudEvent, data: OrganisationUpdated) -> None:
        await service.project_organisation(event=data)

    @consumer.on(topics.CASES, CaseRegistered)
    async def on_case_registered(event: CloudEvent, data: CaseRegistered) -> None:
        await service.on_case_registered(data=data)

    @consumer.on(topics.CASES, *CASE_EVENTS)
    async def on_case_event(event: CloudEvent, data: CaseEvent) -> None:
        await service.on_case_event(data=data)

    @consumer.on(topics.ASSIGNMENTS, MediatorAssigned)
    async def on_mediator_assigned(event: CloudEvent, data: MediatorAssigned) -> None:
        await service.on_mediator_assigned(data=data)
