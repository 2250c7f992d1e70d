"""Stats' writes on the storage engine, against the real FerretDB: handlers racing on one
projection, on one alert and on the analytics lease leave what one serial stream would;
documents written before the engine continue. Each test drives a service of its own on a
database of its own (the session's stats database must stay what its topics say, for the
rebuild's comparison)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tests.stats.conftest import StatsHarness
from tests.stats.history import T0, history
from tests.stats.test_rules import project
from tests.support.kafka import eventually, read_all
from tiaojie.contracts import topics
from tiaojie.contracts.common import CaseStatus, Category, Channel
from tiaojie.contracts.envelope import decode_event, derived_id, new_event
from tiaojie.contracts.intake import CaseRegistered
from tiaojie.contracts.stats import AlertKind, RiskAlertCleared
from tiaojie.runtime.mongo import make_client
from tiaojie.stats.analytics import Analytics
from tiaojie.stats.handlers import dispatch
from tiaojie.stats.metrics import StatsMetrics
from tiaojie.stats.repository import StatsRepository
from tiaojie.stats.service import StatsService

pytestmark = pytest.mark.integration


@dataclass
class Own:
    service: StatsService
    analytics: Analytics
    registry: CollectorRegistry

    @property
    def repo(self) -> StatsRepository:
        return self.service.repo

    def metric(self, name: str, **labels: str) -> float:
        total = 0.0
        for line in generate_latest(self.registry).decode().splitlines():
            if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total


@pytest.fixture
async def own(stats: StatsHarness, unique: str) -> AsyncIterator[Own]:
    """A stats service on a database of its own, publishing alert events as the live one."""
    settings = stats.settings
    client = make_client(settings, app_name="stats-engine-test")
    database = client[settings.database(f"tiaojie_stats_engine_{unique}")]
    repo = StatsRepository(database, publisher=stats.app.state.host.publisher, settings=settings)
    await repo.create_indexes()
    registry = CollectorRegistry()
    service = StatsService(
        repository=repo, metrics=StatsMetrics(registry), clock=stats.clock, settings=settings
    )
    analytics = Analytics(repository=repo, service=service, clock=stats.clock, settings=settings)
    try:
        yield Own(service, analytics, registry)
    finally:
        await client.drop_database(database.name)
        await client.close()


_BOOKKEEPING = {"_id", "rev", "counted"}


def facts(doc: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (doc or {}).items() if k not in _BOOKKEEPING}


async def test_concurrent_handlers_project_as_one_serial_stream_would(own: Own) -> None:
    county = "371381"
    events = history(prefix="cc-", county=county)
    service = own.service
    # Kafka keeps the order of one key on one topic; everything else runs at once: every
    # stream, and each stream twice (a redelivery racing the first delivery).
    streams: dict[tuple[str, str], list[Any]] = {}
    for topic, key, data in events:
        streams.setdefault((topic, key), []).append(data)

    async def handle(stream: list[Any]) -> None:
        for data in stream:
            await dispatch(service, data)

    await asyncio.gather(*(handle(s) for s in [*streams.values(), *streams.values()]))
    cases, handovers = project(events)
    for case_id, expected in cases.items():
        assert facts(await service.repo.case_store.get(case_id)) == facts(expected), case_id
    for handover_id, expected in handovers.items():
        assert facts(await service.repo.handover_store.get(handover_id)) == facts(expected), handover_id
    # Counters moved once per first transition, whoever won each revision.
    assert own.metric("tiaojie_cases_received_total", county=county) == len(cases)
    # Every case's day was marked for recounting after its snapshot was written.
    await own.analytics.recount()
    counts = await service.repo.daily_counts_between(
        T0.date() - timedelta(days=2), T0.date() + timedelta(days=60)
    )
    counted = sum(n for day in counts.values() for key, n in day.items() if key.startswith(f"{county}|"))
    assert counted == len(cases)


def registered(case_id: str, county: str, org: str, keys: list[str], hours: int) -> CaseRegistered:
    return CaseRegistered(
        case_id=case_id,
        channel=Channel.DESK,
        county=county,
        township=county + "001",
        category=Category.NEIGHBOURHOOD,
        organisation_id=org,
        party_keys=keys,
        received_at=T0 + timedelta(hours=hours),
    )


async def test_repeat_cases_handled_at_once_give_one_alert_listing_all(own: Own, stats: StatsHarness) -> None:
    county, tag = "371382", uuid.uuid4().hex[:6]
    keys = [f"pk-{tag}-1", f"pk-{tag}-2"]
    ids = [f"rc-{tag}-{n}" for n in range(6)]
    service = own.service
    await asyncio.gather(
        *(service.case_events(events=[registered(c, county, f"org-{n}", keys, n)]) for n, c in enumerate(ids))
    )
    latest = ids[-1]
    alert = await service.repo.get_alert(f"{AlertKind.REPEAT_DISPUTE}:{latest}")
    assert alert is not None and alert["status"] == "active"
    assert sorted(alert["related"]) == sorted(ids[:-1])  # merged by whichever handler saw each

    async def announced() -> list[Any] | None:
        records = await read_all(
            stats.settings.kafka_bootstrap, stats.settings.topic(topics.ALERTS), expect=10_000, timeout=3
        )
        found = [
            e for e in (decode_event(r.value) for r in records) if e.data.get("alert_id") == alert["_id"]
        ]
        return found or None

    events = await eventually(announced, timeout=30)
    # Raised once: the raise is revision 1 of the alert, which one writer claims. A writer
    # that lost the claim publishes the winner's events itself when the winner has not
    # settled within the engine's patience (a busy broker), under the same stable id, which
    # consumers drop: what counts is one announcement, whatever its copies.
    assert {(e.id, e.type) for e in events} == {(events[0].id, "tiaojie.stats.RiskAlertRaised")}


async def test_one_of_racing_replicas_takes_the_analytics_lease(own: Own, stats: StatsHarness) -> None:
    live = own.analytics
    replicas = []
    for n in range(6):
        replica = Analytics(
            repository=live.repo, service=live.service, clock=live.clock, settings=live.settings
        )
        replica.owner = f"replica-{n}-{uuid.uuid4().hex[:6]}"
        replicas.append(replica)
    now = stats.clock.now()
    until = now + timedelta(minutes=30)
    taken = await asyncio.gather(*(r._take_lease(now=now, until=until) for r in replicas))
    holders = [r for r, won in zip(replicas, taken, strict=True) if won]
    try:
        assert len(holders) == 1
        others = [r for r in replicas if r is not holders[0]]
        assert not await others[0]._take_lease(now=now, until=until)
    finally:
        for holder in holders:
            await holder._release_lease()
    again = replicas[-1]
    try:
        assert await again._take_lease(now=now, until=until)  # free once released
    finally:
        await again._release_lease()
    lease = await live.repo.get_job("analytics-lease")
    assert lease is not None and lease["owner"] is None


async def test_an_alert_written_before_the_engine_is_continued(own: Own) -> None:
    repo = own.repo
    case_id = f"legacy-{uuid.uuid4().hex[:6]}"
    alert_id = f"{AlertKind.GRAVE_RISK}:{case_id}"
    # As the service stored alerts before: no version field.
    await repo.alerts.insert_one(
        {
            "_id": alert_id,
            "kind": AlertKind.GRAVE_RISK,
            "status": "active",
            "county": "371383",
            "case_id": case_id,
        }
    )
    at = T0 + timedelta(days=3)
    event = new_event(
        RiskAlertCleared(
            alert_id=alert_id,
            kind=AlertKind.GRAVE_RISK,
            case_id=case_id,
            county="371383",
            outcome=str(CaseStatus.RESOLVED),
            cleared_at=at,
        ),
        source=topics.service_source("stats"),
        subject=alert_id,
        id=derived_id(alert_id, "cleared"),
        time=at,
    )
    cleared = await asyncio.gather(
        *(
            own.service.change_alert(alert_id, {"status": "cleared", "cleared_at": at}, event)
            for _ in range(5)
        )
    )
    assert sorted(cleared) == [False, False, False, False, True]
    doc = await repo.get_alert(alert_id)
    assert doc is not None and doc["status"] == "cleared" and doc["version"] == 1


async def test_racing_batches_project_as_one_serial_stream_would(own: Own) -> None:
    county = "371384"
    events = [item for item in history(prefix="bb-", county=county) if item[0] == topics.CASES]
    stream = [data for _topic, _key, data in events]
    # The consumer hands a topic over in batches in offset order; a rebalance can hand the
    # same batches to a second replica while the first still works on them, and a failed
    # batch comes back one message at a time.
    batches = [stream[n : n + 7] for n in range(0, len(stream), 7)]

    async def feed(chunks: list[list[Any]]) -> None:
        for chunk in chunks:
            await own.service.case_events(events=chunk)

    await asyncio.gather(feed(batches), feed(batches), feed([[data] for data in stream]), feed([stream]))
    cases, _ = project(events)
    for case_id, expected in cases.items():
        assert facts(await own.repo.case_store.get(case_id)) == facts(expected), case_id
    assert own.metric("tiaojie_cases_received_total", county=county) == len(cases)
    assert own.metric("tiaojie_case_stage_seconds_count", county=county, stage="assign") == 3


async def test_a_projection_stored_with_the_registrys_proposal_is_corrected(own: Own) -> None:
    from tiaojie.contracts.intake import CaseAssignmentRecorded

    case_id = f"legacy-{uuid.uuid4().hex[:6]}"
    county = "371385"
    registration = registered(case_id, county, "org-1", [], 0)
    proposed_at, recorded_at = T0 + timedelta(minutes=1), T0 + timedelta(days=1)
    # As the earlier rule stored it after the registry's MediatorAssigned: its time, no mark.
    await own.service.case_events(events=[registration])
    stored = await own.repo.case_store.get(case_id)
    assert stored is not None
    await own.repo.cases.replace_one(
        {"_id": case_id},
        {**stored, "assigned_at": proposed_at, "mediator_id": "med-proposed", "assignment_failed": False},
    )
    assignment = CaseAssignmentRecorded(
        case_id=case_id,
        county=county,
        status=CaseStatus.ASSIGNED,
        at=recorded_at,
        mediator_id="med-assigned",
    )
    await own.service.case_events(events=[assignment])
    await own.service.case_events(events=[registration, assignment])  # redelivered: nothing new
    doc = await own.repo.case_store.get(case_id)
    assert doc is not None and doc["rev"] == 2
    assert doc["assigned_at"] == recorded_at and doc["mediator_id"] == "med-assigned"
