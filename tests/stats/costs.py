"""Database commands per case event: a stats service on a database of its own whose client
counts every command it sends (tiaojie.runtime.mongo.CommandCounter), fed a workload
through a given path (one event at a time, or batches as the live consumer hands them)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from prometheus_client import CollectorRegistry

from tests.stats.history import T0, history
from tiaojie.contracts import topics
from tiaojie.contracts.common import CaseStatus, Category, Channel, RiskLevel
from tiaojie.contracts.envelope import EventData
from tiaojie.contracts.intake import CaseRegistered, CaseResolved, RiskRaised
from tiaojie.runtime.clock import ManualClock
from tiaojie.runtime.mongo import make_client
from tiaojie.runtime.settings import RuntimeSettings
from tiaojie.stats.metrics import StatsMetrics
from tiaojie.stats.repository import StatsRepository
from tiaojie.stats.service import StatsService
from tiaojie.stats.settings import StatsSettings

Feed = Callable[[StatsService, Sequence[EventData]], Awaitable[None]]


def workload(county: str = "371396") -> list[EventData]:
    """The case events of the scripted history (both topics stats reads cases from), plus
    three cases sharing two parties across organisations and a grave risk later resolved."""
    events = [
        data for topic, _key, data in history(prefix="cost-", county=county) if topic != topics.REFERRALS
    ]
    keys = ["cost-pk-1", "cost-pk-2"]
    for n in range(3):
        events.append(
            CaseRegistered(
                case_id=f"cost-rep-{n}",
                channel=Channel.DESK,
                county=county,
                township=county + "001",
                category=Category.NEIGHBOURHOOD,
                organisation_id=f"org-cost-{n}",
                party_keys=keys,
                received_at=T0 + timedelta(hours=n),
            )
        )
    place = {"county": county, "township": county + "001", "organisation_id": "org-cost-0"}
    events.append(
        RiskRaised(
            case_id="cost-rep-0",
            **place,
            status=CaseStatus.RECEIVED,
            at=T0 + timedelta(hours=5),
            risk_level=RiskLevel.GRAVE,
            signals=["violence"],
        )
    )
    events.append(
        CaseResolved(
            case_id="cost-rep-0",
            **place,
            status=CaseStatus.RESOLVED,
            at=T0 + timedelta(days=5),
            agreement_form="oral",
        )
    )
    return [e for e in events if _consumed(e)]


def _consumed(data: EventData) -> bool:
    from tiaojie.stats.handlers import subscriptions

    return any(isinstance(data, models) for models in subscriptions().values())


@dataclass
class Cost:
    events: int
    commands: dict[str, float]  # "command collection" -> count

    @property
    def total(self) -> float:
        return sum(self.commands.values())

    @property
    def per_event(self) -> float:
        return self.total / self.events


async def measure(settings: RuntimeSettings, events: Sequence[EventData], feed: Feed) -> tuple[Cost, Cost]:
    """Commands sent while `feed` projects `events` on a fresh database, then while it
    projects them again (a redelivery), each without index creation."""
    stats_settings = StatsSettings(**settings.model_dump(exclude={"service_name", "port"}))
    registry = CollectorRegistry()
    client = make_client(settings, app_name="stats-costs", registry=registry)
    db = client[settings.database(f"tiaojie_stats_costs_{uuid.uuid4().hex[:8]}")]
    repo = StatsRepository(db, settings=settings)
    service = StatsService(
        repository=repo,
        metrics=StatsMetrics(CollectorRegistry()),
        clock=ManualClock(T0 + timedelta(days=60)),
        settings=stats_settings,
        publish_alerts=False,  # alerts are written, their events not published: no broker needed
    )
    try:
        await repo.create_indexes()
        costs = []
        for _round in range(2):
            start = _counts(registry)
            await feed(service, events)
            end = _counts(registry)
            costs.append(
                Cost(len(events), {k: v - start.get(k, 0.0) for k, v in end.items() if v > start.get(k, 0.0)})
            )
        return costs[0], costs[1]
    finally:
        await client.drop_database(db.name)
        await client.close()


def _counts(registry: CollectorRegistry) -> dict[str, float]:
    out: dict[str, float] = {}
    for metric in registry.collect():
        if metric.name != "tiaojie_db_commands":
            continue
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                key = f"{sample.labels['command']} {sample.labels['collection']}"
                out[key] = out.get(key, 0.0) + sample.value
    return out
