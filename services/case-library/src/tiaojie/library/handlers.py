"""The library's Kafka subscribers: thin adapters from events to the rules."""

from __future__ import annotations

from tiaojie.contracts import topics
from tiaojie.contracts.envelope import CloudEvent
from tiaojie.contracts.intake import (
    AgreementPerformed,
    CaseAccepted,
    CaseArchived,
    CaseAssignmentRecorded,
    CaseEvent,
    CaseFailed,
    CaseNominated,
    CaseRegistered,
    CaseRejected,
    CaseResolved,
    CaseTransferred,
    CaseWithdrawn,
    FollowUpRecorded,
    SessionRecorded,
)
from tiaojie.library.service import LibraryService
from tiaojie.runtime.consumer import ReliableConsumer

# Lifecycle events that may change what the library knows of an open case.
CASE_EVENTS = (
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
)


def register_handlers(consumer: ReliableConsumer, service: LibraryService) -> None:
    @consumer.on(topics.LIBRARY_NOMINATIONS, CaseNominated)
    async def on_case_nominated(event: CloudEvent, data: CaseNominated) -> None:
        """An archived case offered to the library: anonymise and store it for the bureau."""
        await service.nominate(event=event, data=data)

    @consumer.on(topics.CASES, CaseRegistered)
    async def on_case_registered(event: CloudEvent, data: CaseRegistered) -> None:
        await service.project_registered(data=data, at=event.time)

    @consumer.on(topics.CASES, *CASE_EVENTS)
    async def on_case_event(event: CloudEvent, data: CaseEvent) -> None:
        await service.project_case_event(data=data, at=event.time)
