"""Stats' Kafka subscribers: every event of the mesh feeds a projection."""

from __future__ import annotations

from tiaojie.contracts import topics
from tiaojie.contracts.envelope import CloudEvent
from tiaojie.contracts.intake import CaseRegistered
from tiaojie.contracts.registry import MediatorAssigned
from tiaojie.runtime.consumer import ReliableConsumer
from tiaojie.stats.service import StatsService


def register_handlers(consumer: ReliableConsumer, service: StatsService) -> None:
    @consumer.on(topics.CASES, CaseRegistered)
    async def on_case_registered(event: CloudEvent, data: CaseRegistered) -> None:
        await service.case_registered(data=data)

    @consumer.on(topics.ASSIGNMENTS, MediatorAssigned)
    async def on_mediator_assigned(event: CloudEvent, data: MediatorAssigned) -> None:
        await service.mediator_assigned(data=data)
