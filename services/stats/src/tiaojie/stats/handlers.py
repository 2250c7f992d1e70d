"""Stats' Kafka subscribers: every event of the mesh feeds a projection."""

from __future__ import annotations

from tiaojie.contracts import topics
from tiaojie.contracts.envelope import EVENT_TYPES, CloudEvent, EventData
from tiaojie.contracts.intake import CaseEvent, CaseRegistered
from tiaojie.contracts.referral import (
    DeadlineCleared,
    DeadlineOverdue,
    ReferralAccepted,
    ReferralClosed,
    ReferralDeclined,
    ReferralRequested,
    TransferAccepted,
    TransferDeclined,
    TransferRequested,
)
from tiaojie.contracts.registry import (
    AssignmentFailed,
    MediatorAssigned,
    MediatorUpdated,
    OrganisationUpdated,
)
from tiaojie.runtime.consumer import ReliableConsumer
from tiaojie.stats.service import StatsService

HANDOVER_EVENTS: tuple[type[EventData], ...] = (
    ReferralRequested,
    ReferralAccepted,
    ReferralDeclined,
    ReferralClosed,
    DeadlineOverdue,
    DeadlineCleared,
    TransferRequested,
    TransferAccepted,
    TransferDeclined,
)


def case_event_types() -> tuple[type[EventData], ...]:
    """CaseRegistered and every lifecycle event intake defines (each carries the case's
    place and status, so new lifecycle events are projected without a change here)."""
    lifecycle = sorted(
        (m for m in EVENT_TYPES.values() if issubclass(m, CaseEvent) and m.event_type),
        key=lambda m: m.event_type,
    )
    return (CaseRegistered, *lifecycle)


def handover_id(data: EventData) -> str:
    for field in ("referral_id", "transfer_id", "subject_id"):
        value = getattr(data, field, None)
        if value:
            return str(value)
    raise ValueError(f"{type(data).__name__} names no referral or transfer")


def register_handlers(consumer: ReliableConsumer, service: StatsService) -> None:
    @consumer.on(topics.CASES, *case_event_types())
    async def on_case_event(event: CloudEvent, data: CaseRegistered | CaseEvent) -> None:
        await service.case_event(data=data, case_id=data.case_id)

    @consumer.on(topics.ASSIGNMENTS, MediatorAssigned, AssignmentFailed)
    async def on_assignment(event: CloudEvent, data: MediatorAssigned | AssignmentFailed) -> None:
        await service.case_event(data=data, case_id=data.case_id)

    @consumer.on(topics.REFERRALS, *HANDOVER_EVENTS)
    async def on_handover(event: CloudEvent, data: EventData) -> None:
        await service.handover_event(data=data, handover_id=handover_id(data))

    @consumer.on(topics.ORGANISATIONS, OrganisationUpdated)
    async def on_organisation(event: CloudEvent, data: OrganisationUpdated) -> None:
        await service.organisation_updated(data=data)

    @consumer.on(topics.MEDIATORS, MediatorUpdated)
    async def on_mediator(event: CloudEvent, data: MediatorUpdated) -> None:
        await service.mediator_updated(data=data)
