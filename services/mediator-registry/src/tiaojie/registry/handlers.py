"""Registry's Kafka subscribers: thin adapters from events to the rules."""

from __future__ import annotations

from tiaojie.contracts import topics
from tiaojie.contracts.envelope import CloudEvent
from tiaojie.contracts.intake import (
    CaseArchived,
    CaseEvent,
    CaseFailed,
    CaseRegistered,
    CaseRejected,
    CaseResolved,
    CaseTransferred,
    CaseWithdrawn,
    RiskRaised,
)
from tiaojie.contracts.referral import TransferAccepted
from tiaojie.registry.assignment import AssignmentService
from tiaojie.runtime.consumer import ReliableConsumer


def register_handlers(consumer: ReliableConsumer, assignments: AssignmentService) -> None:
    @consumer.on(topics.CASES, CaseRegistered)
    async def on_case_registered(event: CloudEvent, data: CaseRegistered) -> None:
        """Every registered case gets a mediator, an escalation, or an AssignmentFailed."""
        await assignments.case_registered(event=event, case=data)

    @consumer.on(
        topics.CASES, CaseResolved, CaseFailed, CaseWithdrawn, CaseArchived, CaseRejected, CaseTransferred
    )
    async def on_case_event(event: CloudEvent, data: CaseEvent) -> None:
        """Load follows the case: closing events and transfers release the mediator."""
        await assignments.case_event(case=data)

    @consumer.on(topics.CASES, RiskRaised)
    async def on_risk_raised(event: CloudEvent, data: RiskRaised) -> None:
        """A graver risk may need a higher-graded mediator than the one holding the case."""
        await assignments.risk_raised(event=event, risk=data)

    @consumer.on(topics.REFERRALS, TransferAccepted)
    async def on_transfer_accepted(event: CloudEvent, data: TransferAccepted) -> None:
        """A case accepted by another organisation gets a mediator there."""
        await assignments.transfer_accepted(event=event, transfer=data)
