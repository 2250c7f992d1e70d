"""Registry's Kafka subscribers."""

from __future__ import annotations

from tiaojie.contracts import topics
from tiaojie.contracts.envelope import CloudEvent
from tiaojie.contracts.intake import CaseRegistered
from tiaojie.registry.service import RegistryService
from tiaojie.runtime.consumer import ReliableConsumer


def register_handlers(consumer: ReliableConsumer, service: RegistryService) -> None:
    @consumer.on(topics.CASES, CaseRegistered)
    async def on_case_registered(event: CloudEvent, data: CaseRegistered) -> None:
        """Every registered case gets a mediator (or an escalation that says why not)."""
        await service.assign(event=event, case=data)
