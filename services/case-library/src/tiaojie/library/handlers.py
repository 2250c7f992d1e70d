"""The library's Kafka subscribers: thin adapters from events to the rules."""

from __future__ import annotations

from tiaojie.contracts import topics
from tiaojie.contracts.envelope import CloudEvent
from tiaojie.contracts.intake import (
    AgreementPerformed,
    CaseAccepted,
    CaseArchived,
    CaseAssignmentRecorded,
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
from tiaojie.runtime.consumer import Delivery, ReliableConsumer

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

    @consumer.on_batch(topics.CASES, CaseRegistered, *CASE_EVENTS)
    async def on_case_events(batch: list[Delivery]) -> None:
        """What the library knows of open cases, a batch of intake's events at a time."""
        await service.project_cases(events=[(d.data, d.event.time) for d in batch])
