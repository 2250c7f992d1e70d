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
from tiaojie.contracts.registry import OrganisationUpdated
from tiaojie.referral.inbound import AgencyInbound, inbound_pattern
from tiaojie.referral.service import ReferralService
from tiaojie.runtime.consumer import Delivery, ReliableConsumer
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

    # The case topic alone says what happens to a case (the registry's MediatorAssigned is a
    # proposal intake records as CaseAssignmentRecorded, in order with the case's events).
    @consumer.on_batch(topics.CASES, CaseRegistered, *CASE_EVENTS)
    async def on_case_events(batch: list[Delivery]) -> None:
        """Intake's case events, a batch at a time: the projection and the closed loop."""
        await service.on_case_events(events=[d.data for d in batch])
