"""Keeps this replica's search index current from the library's own topic.

Every replica keeps a whole index in memory, so every replica must see every event: the
tail reads library.entries.v1 without a consumer group (no offsets are committed, nothing
is shared) from the positions it noted *before* the start-up load from the collection.
An event is either in what the load read (its write came before the load) or after those
positions (it was published after its write), so nothing falls between; what is seen
twice is ignored by version. The index is a cache of the collection: if this tail stops,
the replica answers from a stale index until it restarts, and no data is lost.

`replay` reads the topic from its beginning into an index: the index rebuilt from the
library's events alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from tiaojie.contracts import topics
from tiaojie.contracts.envelope import CloudEvent, decode_event
from tiaojie.contracts.library import EntryPublished, EntryWithdrawn
from tiaojie.library.search import SearchIndex, Segmented
from tiaojie.runtime.kafka import client_kwargs
from tiaojie.runtime.logging import get_logger
from tiaojie.runtime.settings import RuntimeSettings

log = get_logger(__name__)

Apply = Callable[[CloudEvent], Awaitable[str]]


class IndexTail:
    """A group-less reader of the library topic, started before the index is loaded."""

    def __init__(self, settings: RuntimeSettings, *, poll_ms: int = 500) -> None:
        self._settings = settings
        self._poll_ms = poll_ms
        self._consumer: AIOKafkaConsumer | None = None
        self._start: dict[TopicPartition, int] = {}

    async def mark(self) -> None:
        """Note where the topic ends now (call before loading the index)."""
        consumer = AIOKafkaConsumer(
            **client_kwargs(self._settings),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            metadata_max_age_ms=self._settings.kafka_metadata_max_age_ms,
        )
        await consumer.start()
        physical = self._settings.topic(topics.LIBRARY)
        parts = await _partitions(consumer, physical)
        assigned = [TopicPartition(physical, p) for p in sorted(parts)]
        consumer.assign(assigned)
        for attempt in range(1, 31):
            try:
                self._start = await consumer.end_offsets(assigned) if assigned else {}
                break
            except KafkaError:
                # Leaders of a topic created moments ago may not be elected yet.
                if attempt == 30:
                    raise
                await asyncio.sleep(0.2 * attempt)
        self._consumer = consumer

    async def run(self, apply: Apply, on_outcome: Callable[[str], None] | None = None) -> None:
        """Apply every event after the mark, until cancelled."""
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("mark() first")
        for tp, offset in self._start.items():
            consumer.seek(tp, offset)
        try:
            while True:
                try:
                    batch = await consumer.getmany(timeout_ms=self._poll_ms, max_records=500)
                except KafkaError as exc:
                    # The broker is away: keep the positions and ask again (no data is lost,
                    # the index is only stale meanwhile).
                    log.warning("index tail cannot read the library topic", error=type(exc).__name__)
                    await asyncio.sleep(1.0)
                    continue
                for records in batch.values():
                    for record in records:
                        outcome = await _apply_one(apply, record.value)
                        if on_outcome is not None:
                            on_outcome(outcome)
        finally:
            await consumer.stop()

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    """Partitions of a topic, for a consumer without a group or subscription: aiokafka only
    learns them from a metadata refresh (its public topics() does not fill the cache), and
    a refresh can come back without the topic on a busy broker, so ask a few times."""
    for attempt in range(10):
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return set(parts)
        await consumer._client.add_topic(topic)
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.2 * attempt)
    raise LookupError(f"topic {topic} has no partitions the broker will name")


async def apply_event(index: SearchIndex, event: CloudEvent) -> str:
    """Apply one library event to an index: 'applied', 'stale' (an older or equal version
    than the index holds) or 'ignored' (not about publication)."""
    payload = event.payload()
    if isinstance(payload, EntryPublished):
        if index.version_of(payload.entry_id) >= payload.version:
            return "stale"
        case = await asyncio.to_thread(Segmented.of, payload)
        changed = await asyncio.to_thread(
            index.apply, case, entry_id=payload.entry_id, version=payload.version
        )
    elif isinstance(payload, EntryWithdrawn):
        changed = await asyncio.to_thread(
            index.apply, None, entry_id=payload.entry_id, version=payload.version
        )
    else:
        return "ignored"
    return "applied" if changed else "stale"


async def _apply_one(apply: Apply, value: bytes | None) -> str:
    try:
        event = decode_event(value or b"")
    except ValueError:
        return "ignored"  # the producer is us; a malformed record is not worth stopping for
    for attempt in range(1, 4):
        try:
            return await apply(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("index tail could not apply an event", error=type(exc).__name__, attempt=attempt)
            await asyncio.sleep(0.2 * attempt)
    # The index is a cache of the collection: the next start-up loads this entry anyway.
    return "failed"


async def replay(settings: RuntimeSettings, apply: Apply, *, idle_ms: int = 2000) -> int:
    """Read the whole library topic from the beginning into an index; returns events seen."""
    consumer = AIOKafkaConsumer(
        **client_kwargs(settings),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    seen = 0
    try:
        physical = settings.topic(topics.LIBRARY)
        parts = await _partitions(consumer, physical)
        assigned = [TopicPartition(physical, p) for p in sorted(parts)]
        consumer.assign(assigned)
        end = await consumer.end_offsets(assigned) if assigned else {}
        # Explicit offsets: seek_to_beginning() right after assign() can lose the race with
        # the reset assign() started, and position() then answered the end (seen: 0 events).
        for tp, offset in (await consumer.beginning_offsets(assigned)).items():
            consumer.seek(tp, offset)
        while True:
            positions = {tp: await consumer.position(tp) for tp in end}
            if all(positions[tp] >= offset for tp, offset in end.items()):
                break
            batch = await consumer.getmany(timeout_ms=idle_ms, max_records=500)
            for records in batch.values():
                for record in records:
                    await _apply_one(apply, record.value)
                    seen += 1
    finally:
        await consumer.stop()
    return seen
