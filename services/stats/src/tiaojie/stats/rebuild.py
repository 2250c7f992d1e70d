"""`tiaojie rebuild`: replay every topic from its beginning into fresh projections and
prove the figures equal the live ones.

The replay reads the topics directly (aiokafka, no consumer group, up to the end offsets
seen at the start) and applies each event through the same rules as the live service,
into a separate database. Alert events are not published again (the live service did).
Then the daily analytics are re-run over the days the live service evaluated, and the two
databases are compared: summary figures of every county, open and overdue cases, alerts,
and daily counts.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from tiaojie.contracts.envelope import EventData, decode_event
from tiaojie.runtime.clock import Clock, ManualClock
from tiaojie.runtime.kafka import client_kwargs
from tiaojie.runtime.logging import get_logger
from tiaojie.runtime.mongo import Document, make_client
from tiaojie.stats.analytics import STATE, Analytics, digest
from tiaojie.stats.handlers import dispatch_many, is_case_event, subscriptions
from tiaojie.stats.metrics import StatsMetrics
from tiaojie.stats.repository import StatsRepository
from tiaojie.stats.service import StatsService
from tiaojie.stats.settings import StatsSettings

log = get_logger(__name__)
# Case events projected in one engine round (chunks in order: each case's order is kept).
CASE_CHUNK = 500
ALERT_FIELDS = ("kind", "status", "county", "township", "category", "case_id", "detected_on", "cleared_on")


@dataclass
class Comparison:
    events: int
    skipped: int
    counties: list[str]
    differences: list[str] = field(default_factory=list)
    # Days the live service judged before some of their cases arrived: their hotspot
    # alerts are re-derived on the complete data and not compared.
    late_ranges: list[tuple[str, str]] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not self.differences


def stack(
    settings: StatsSettings, database: str, clock: Clock
) -> tuple[Any, StatsRepository, StatsService, Analytics]:
    client = make_client(settings, app_name="tiaojie-stats-rebuild")
    # No publisher: alert changes are replayed without their events (the live service
    # published them); the engine refuses any change that would publish.
    repo = StatsRepository(client[database], settings=settings)
    service = StatsService(
        repository=repo,
        metrics=StatsMetrics(CollectorRegistry()),
        clock=clock,
        settings=settings,
        publish_alerts=False,
    )
    return client, repo, service, Analytics(repository=repo, service=service, clock=clock, settings=settings)


async def replay(settings: StatsSettings, service: StatsService, *, concurrency: int = 16) -> tuple[int, int]:
    """Apply every event of stats' topics, from the beginning to the current end."""
    wanted = subscriptions()
    physical = {settings.topic(t): t for t in wanted}
    consumer = AIOKafkaConsumer(
        **client_kwargs(settings),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    applied = skipped = 0
    try:
        # A metadata refresh on a busy broker can come back without some topics: ask again
        # rather than rebuild from part of the history.
        for attempt in range(10):
            for topic in physical:
                consumer._client.add_topic(topic)
            await consumer._client.force_metadata_update()
            if all(consumer.partitions_for_topic(t) for t in physical):
                break
            await asyncio.sleep(0.2 * attempt)
        partitions = [
            TopicPartition(topic, p)
            for topic in physical
            for p in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        if not partitions:
            return 0, 0
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        limit = asyncio.Semaphore(concurrency)
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000, max_records=2000)
            # As the live service: each batch's case events projected together (per case in
            # partition order), the other events per key in order, keys concurrently.
            cases: list[EventData] = []
            by_key: dict[bytes, list[EventData]] = defaultdict(list)
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        continue
                    data = _decoded(record, wanted[physical[record.topic]])
                    if data is None:
                        skipped += 1  # the live consumer dead-lettered or ignored it too
                    elif is_case_event(data):
                        cases.append(data)
                    else:
                        by_key[record.key or f"{tp}:{record.offset}".encode()].append(data)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
            for start in range(0, len(cases), CASE_CHUNK):
                await service.case_events(events=cases[start : start + CASE_CHUNK])

            async def run(group: list[EventData]) -> None:
                async with limit:
                    await dispatch_many(service, group)

            await asyncio.gather(*(run(g) for g in by_key.values()))
            applied += len(cases) + sum(len(g) for g in by_key.values())
    finally:
        await consumer.stop()
    return applied, skipped


def _decoded(record: ConsumerRecord[Any, Any], models: tuple[type[EventData], ...]) -> EventData | None:
    """The record's payload if stats projects it, else None."""
    try:
        event = decode_event(record.value or b"")
    except (ValueError, ValidationError):
        return None
    model = next((m for m in models if m.event_type == event.type), None)
    if model is None:
        return None
    try:
        return model.model_validate(event.data)
    except ValidationError:
        return None


def _in(day: str | None, ranges: list[tuple[str, str]]) -> bool:
    return day is not None and any(lo <= day <= hi for lo, hi in ranges)


async def _fingerprint(
    repo: StatsRepository, service: StatsService, counties: list[str], late: list[tuple[str, str]]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for county in counties:
        summary = await service.summary(counties=[county])
        summary.pop("as_of", None)
        out[f"summary:{county}"] = summary
    out["alerts"] = {
        a["_id"]: {k: a.get(k) for k in ALERT_FIELDS}
        for a in await repo.alerts_of(counties)
        if not (
            a.get("kind") == "hotspot" and (_in(a.get("detected_on"), late) or _in(a.get("cleared_on"), late))
        )
    }
    counts = await repo.daily_counts_between(date(1970, 1, 1), date(2999, 12, 31))
    out["daily_counts"] = {d: c for d, c in counts.items() if c}
    return out


async def _counties(repo: StatsRepository) -> set[str]:
    return {c for c in await repo.cases.distinct("county") if c} | {
        c for c in await repo.handovers.distinct("county") if c
    }


async def rebuild(settings: StatsSettings, *, into: str, keep: bool = True, now: Any = None) -> Comparison:
    """Rebuild into database `into` (dropped first) and compare with the live database."""
    live_name = settings.database(settings.database_name)
    target = settings.database(into)
    if target == live_name:
        raise ValueError("the rebuild database must not be the live one")
    clock = ManualClock(now) if now is not None else ManualClock()
    if now is None:
        from tiaojie.runtime.clock import SystemClock

        clock.set(SystemClock().now())
    live_client, live_repo, live_service, live_analytics = stack(settings, live_name, clock)
    new_client, new_repo, new_service, new_analytics = stack(settings, target, clock)
    try:
        await new_client.drop_database(target)
        await new_repo.create_indexes()
        applied, skipped = await replay(settings, new_service)
        state: Document = await live_repo.get_job(STATE) or {}
        await live_analytics.recount()
        await new_analytics.recount()
        if state.get("first_day") and state.get("last_day"):
            await new_analytics.detect(
                since=date.fromisoformat(state["first_day"]), through=date.fromisoformat(state["last_day"])
            )
        late = []
        for record in sorted(await live_repo.detection_records(), key=lambda r: (r["since"], r["through"])):
            rows = await new_analytics.history(
                first=date.fromisoformat(record["first"]), through=date.fromisoformat(record["through"])
            )
            if digest(rows) != record["digest"]:
                late.append((record["since"], record["through"]))
        counties = sorted(await _counties(live_repo) | await _counties(new_repo))
        before = await _fingerprint(live_repo, live_service, counties, late)
        after = await _fingerprint(new_repo, new_service, counties, late)
        comparison = Comparison(applied, skipped, counties, late_ranges=late)
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                comparison.differences.append(_describe(key, before.get(key), after.get(key)))
        if not keep:
            await new_client.drop_database(target)
        return comparison
    finally:
        await live_client.close()
        await new_client.close()


def _describe(key: str, live: Any, rebuilt: Any) -> str:
    if isinstance(live, dict) and isinstance(rebuilt, dict):
        fields = sorted(k for k in set(live) | set(rebuilt) if live.get(k) != rebuilt.get(k))
        shown = "; ".join(f"{f}: live {live.get(f)!r} rebuilt {rebuilt.get(f)!r}" for f in fields[:3])
        return f"{key}: {len(fields)} differ; {shown}"
    return f"{key}: live {live!r} != rebuilt {rebuilt!r}"
