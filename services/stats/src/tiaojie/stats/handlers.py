"""Stats' Kafka subscribers: every event of the mesh feeds a projection."""

from __future__ import annotations

from collections.abc import Sequence

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
from tiaojie.contracts.registry import AssignmentFailed, MediatorUpdated, OrganisationUpdated
from tiaojie.runtime.consumer import Delivery, ReliableConsumer
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
    """Every topic stats reads and the event types it projects from each. A case's
    assignment (its time, its mediator) comes from intake's CaseAssignmentRecorded alone:
    the registry's MediatorAssigned is a proposal made before acceptance, so only its
    AssignmentFailed (which nobody else knows) is read from the assignments topic."""
    return {
        topics.CASES: case_event_types(),
        topics.ASSIGNMENTS: (AssignmentFailed,),
        topics.REFERRALS: HANDOVER_EVENTS,
        topics.ORGANISATIONS: (OrganisationUpdated,),
        topics.MEDIATORS: (MediatorUpdated,),
    }


# Topics whose events project cases, handled a batch at a time.
CASE_TOPICS = (topics.CASES, topics.ASSIGNMENTS)


def is_case_event(data: EventData) -> bool:
    return isinstance(data, CaseRegistered | CaseEvent | AssignmentFailed)


async def dispatch(service: StatsService, data: EventData) -> None:
    """Route one event to its projection (tests, and anything handling events one by one)."""
    await dispatch_many(service, [data])


async def dispatch_many(service: StatsService, events: Sequence[EventData]) -> None:
    """Route events, each key's in their order, to their projections: the case events
    together (one batch), the others one by one (the live subscribers and `tiaojie rebuild`)."""
    cases = [data for data in events if is_case_event(data)]
    if cases:
        await service.case_events(events=cases)
    for data in events:
        if isinstance(data, HANDOVER_EVENTS):
            await service.handover_event(data=data, handover_id=handover_id(data))
        elif isinstance(data, OrganisationUpdated):
            await service.organisation_updated(data=data)
        elif isinstance(data, MediatorUpdated):
            await service.mediator_updated(data=data)


def register_handlers(consumer: ReliableConsumer, service: StatsService) -> None:
    for topic in CASE_TOPICS:

        @consumer.on_batch(topic, *subscriptions()[topic], name=f"stats:{topic}")
        async def project_cases(deliveries: list[Delivery]) -> None:
            # Each case's events in their order; a failure hands the batch back one message
            # at a time (the projection is idempotent, so what was written stays right).
            await service.case_events(events=[d.data for d in deliveries])

    for topic, models in subscriptions().items():
        if topic in CASE_TOPICS:
            continue

        @consumer.on(topic, *models, name=f"stats:{topic}")
        async def project(event: CloudEvent, data: EventData) -> None:
            await dispatch(service, data)
