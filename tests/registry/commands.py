"""Counting the database commands the registry sends (a pymongo CommandListener on a
client of the test's own), to measure what an assignment costs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from pymongo import AsyncMongoClient, monitoring

from tiaojie.runtime.mongo import Document
from tiaojie.runtime.settings import RuntimeSettings

# Commands that are about connections, not data.
_HOUSEKEEPING = frozenset({"hello", "isMaster", "ismaster", "ping", "endSessions", "buildInfo"})
_WRITES = frozenset({"insert", "update", "delete", "findAndModify"})


class CommandTally(monitoring.CommandListener):
    """Counts data commands by name and collection while `counting()` is open."""

    def __init__(self) -> None:
        self.seen: Counter[tuple[str, str]] = Counter()
        self._on = False

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        if not self._on or name in _HOUSEKEEPING:
            return
        target = event.command.get(name) if name != "getMore" else event.command.get("collection")
        self.seen[(name, target if isinstance(target, str) else "-")] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None

    @contextmanager
    def counting(self) -> Iterator[Counter[tuple[str, str]]]:
        """Count the commands sent inside the block (returned as a fresh Counter)."""
        self.seen = Counter()
        self._on = True
        try:
            yield self.seen
        finally:
            self._on = False

    @staticmethod
    def writes(seen: Counter[tuple[str, str]]) -> int:
        return sum(n for (name, _), n in seen.items() if name in _WRITES)


def counted_client(settings: RuntimeSettings, tally: CommandTally) -> AsyncMongoClient[Document]:
    """A client like the services' own (tz-aware, no retryable writes) that reports to `tally`."""
    return AsyncMongoClient(
        settings.mongo_url,
        tz_aware=True,
        maxPoolSize=settings.mongo_pool_size,
        retryWrites=False,
        event_listeners=[tally],
    )
