"""Publishes alert events exactly once in normal operation (at least once after a crash).

An alert event is recorded as its own document (`alert_events`, _id = the event's
deterministic id) by whoever made the alert change happen; the publisher first claims it
by inserting `<event id>#<attempt>` into `alert_claims` (an insert against the unique _id
is the one write FerretDB 1.24 applies atomically), so an in-line publication and the
periodic sweep never both publish it. The sweep takes over only an event whose latest
claim is older than `CLAIM_LEASE` (its publisher died before marking it published).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tiaojie.runtime.kafka import EventPublisher
from tiaojie.runtime.logging import get_logger
from tiaojie.runtime.mongo import Document, sweep_forever
from tiaojie.runtime.settings import RuntimeSettings
from tiaojie.stats.repository import StatsRepository

log = get_logger(__name__)
CLAIM_LEASE = timedelta(seconds=30)


class AlertRelay:
    def __init__(
        self, *, publisher: EventPublisher, settings: RuntimeSettings, repository: StatsRepository
    ) -> None:
        self._publisher = publisher
        self._settings = settings
        self._repo = repository

    async def publish(self, doc: Document, *, attempt: int = 1) -> bool:
        """Publish a recorded alert event if this claim wins; True if published."""
        if not await self._repo.claim_alert_event(doc["_id"], attempt, datetime.now(UTC)):
            return False
        await self._publisher.publish_raw(
            self._settings.topic(doc["topic"]), doc["value"].encode(), key=doc["key"]
        )
        await self._repo.mark_published(doc["_id"])
        return True

    async def sweep(self) -> int:
        """Publish recorded events nobody published (their publisher died)."""
        published = 0
        now = datetime.now(UTC)
        for doc in await self._repo.unpublished_alert_events():
            attempt, at = await self._repo.last_claim(doc["_id"])
            if at is not None and now - at < CLAIM_LEASE:
                continue  # being published, or its publisher died only just now
            published += await self.publish(doc, attempt=attempt + 1)
        if published:
            log.info("alert events relayed", events=published)
        return published

    async def run_forever(self) -> None:
        await sweep_forever(self.sweep, self._settings.outbox_relay_interval, what="alert relay sweep")
