"""Registry's Kafka subscribers: thin adapters from events to the rules.

The registry reads one topic, intake's case events, with one batch handler: a case's
registration, its transfers (intake's `CaseTransferred`, after it moved the case: the
registry acts on that event alone, in order with the case's other events), its risk and
its closing all meet in the case's partition, in order.
"""

from __future__ import annotations

from tiaojie.contracts import topics
from tiaojie.contracts.intake import (
    CaseArchived,
    CaseFailed,
    CaseRegistered,
    CaseRejected,
    CaseResolved,
    CaseTransferred,
    CaseWithdrawn,
    RiskRaised,
)
from tiaojie.registry.assignment import AssignmentService
from tiaojie.runtime.consumer import Delivery, ReliableConsumer


def register_handlers(consumer: ReliableConsumer, assignments: AssignmentService) -> None:
    @consumer.on_batch(
        topics.CASES,
        CaseRegistered,
        CaseTransferred,
        RiskRaised,
        CaseResolved,
        CaseFailed,
        CaseWithdrawn,
        CaseArchived,
        CaseRejected,
    )
    async def on_case_events(batch: list[Delivery]) -> None:
        """Registered and transferred cases get a mediator (or an AssignmentFailed), a
        graver risk may need another, closing events release the holder: a batch at a time."""
        await assignments.case_events(events=[(d.event, d.data) for d in batch])
