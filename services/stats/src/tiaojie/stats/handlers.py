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


def subscriptions() -> dict[str, tuple[type[EventData], ...]]:
    """Every topic stats reads and the event types it projects from each."""
    return {
        topics.CASES: case_event_types(),
        topics.ASSIGNMENTS: (MediatorAssigned, AssignmentFailed),
        topics.REFERRALS: HANDOVER_EVENTS,
        topics.ORGANISATIONS: (OrganisationUpdated,),
        topics.MEDIATORS: (MediatorUpdated,),
    }


async def dispatch(service: StatsService, data: EventData) -> None:
    """Route one event to its projection (the live subscribers and `tiaojie rebuild`)."""
    if isinstance(data, CaseRegistered | CaseEvent | MediatorAssigned | AssignmentFailed):
        await service.case_event(data=data, case_id=data.case_id)
    elif isinstance(data, HANDOVER_EVENTS):
        await service.handover_event(data=data, handover_id=handover_id(data))
    elif isinstance(data, OrganisationUpdated):
        await service.organisation_updated(data=data)
    elif isinstance(data, MediatorUpdated):
        await service.mediator_updated(data=data)


def register_handlers(consumer: ReliableConsumer, service: StatsService) -> None:
    for topic, models in subscriptions().items():

        @consumer.on(topic, *models, name=f"stats:{topic}")
        async def project(event: CloudEvent, data: EventData) -> None:
            await dispatch(service, data)
