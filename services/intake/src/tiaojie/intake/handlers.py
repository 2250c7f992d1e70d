"""Intake's Kafka subscribers: thin adapters from events to the rules."""

from __future__ import annotations

from tiaojie.contracts import topics
from tiaojie.contracts.envelope import CloudEvent
from tiaojie.contracts.intake import DisputeSubmitted
from tiaojie.contracts.referral import ReferralAccepted, TransferAccepted
from tiaojie.contracts.registry import AssignmentFailed, MediatorAssigned, OrganisationUpdated
from tiaojie.intake.registration import Submitted
from tiaojie.intake.service import IntakeService, case_id_for
from tiaojie.runtime.consumer import Delivery, ReliableConsumer


def register_handlers(consumer: ReliableConsumer, service: IntakeService) -> None:
    @consumer.on_batch(topics.SUBMISSIONS, DisputeSubmitted)
    async def on_disputes_submitted(batch: list[Delivery]) -> dict[int, BaseException]:
        """Systems submitted disputes: same rules as HTTP (invalid ones go to the DLQ with
        the same reasons), idempotent by event id, registered a batch at a time."""
        return await service.register_many(
            submissions=[
                Submitted(
                    submission=d.data.submission,
                    registered_by=f"system:{d.event.source}",
                    case_id=case_id_for(scope=f"kafka:{d.event.source}", key=d.event.id),
                )
                for d in batch
            ]
        )

    @consumer.on(topics.ORGANISATIONS, OrganisationUpdated)
    async def on_organisation_updated(event: CloudEvent, data: OrganisationUpdated) -> None:
        await service.project_organisation(event=data)

    @consumer.on_batch(topics.ASSIGNMENTS, MediatorAssigned, AssignmentFailed)
    async def on_registry_decisions(batch: list[Delivery]) -> None:
        """The registry's assignments and failures to assign, a batch at a time."""
        await service.record_registry_decisions(decisions=[(d.data, d.event.id) for d in batch])

    @consumer.on(topics.REFERRALS, ReferralAccepted)
    async def on_referral_accepted(event: CloudEvent, data: ReferralAccepted) -> None:
        """An organisation accepted a referral: the case is created (or linked) and accepted."""
        await service.accept_referral(event=data, event_id=event.id)

    @consumer.on(topics.REFERRALS, TransferAccepted)
    async def on_transfer_accepted(event: CloudEvent, data: TransferAccepted) -> None:
        """A transfer was accepted: the case moves to the receiving organisation."""
        await service.transfer(event=data, event_id=event.id)
