"""Stats rules: idempotent projections of case events and the figures built from them."""

from __future__ import annotations

from datetime import datetime

from tiaojie.contracts.intake import CaseRegistered
from tiaojie.contracts.registry import MediatorAssigned
from tiaojie.runtime.mongo import Document
from tiaojie.stats.metrics import StatsMetrics
from tiaojie.stats.repository import StatsRepository


def _seconds(later: datetime, earlier: datetime) -> float:
    return max(0.0, (later - earlier).total_seconds())


class StatsService:
    def __init__(self, *, repository: StatsRepository, metrics: StatsMetrics) -> None:
        self.repo = repository
        self.metrics = metrics

    async def case_registered(self, *, data: CaseRegistered) -> None:
        """Project a registration; counters move only the first time (redelivery-safe)."""
        before = await self.repo.merge_case(
            data.case_id,
            {
                "county": data.county,
                "township": data.township,
                "channel": data.channel,
                "category": data.category,
                "received_at": data.received_at,
            },
        )
        if before is None or before.get("received_at") is None:
            self.metrics.received.labels(data.county, data.channel, data.category).inc()
            if before and before.get("assigned_at"):
                self._observe_assign(data.county, before["assigned_at"], data.received_at)

    async def mediator_assigned(self, *, data: MediatorAssigned) -> None:
        before = await self.repo.merge_case(
            data.case_id, {"assigned_at": data.assigned_at, "county": data.county}
        )
        if before is not None and before.get("assigned_at") is None and before.get("received_at"):
            self._observe_assign(data.county, data.assigned_at, before["received_at"])

    def _observe_assign(self, county: str, assigned_at: datetime, received_at: datetime) -> None:
        self.metrics.stage_seconds.labels("assign", county).observe(_seconds(assigned_at, received_at))

    async def summary(self, *, counties: list[str]) -> Document:
        """Figures over the caller's counties."""
        scope = {"county": counties[0]} if len(counties) == 1 else {"county": {"$in": counties}}
        received = await self.repo.count({**scope, "received_at": {"$ne": None}})
        assigned = await self.repo.count({**scope, "assigned_at": {"$ne": None}})
        return {"counties": counties, "received": received, "assigned": assigned}
