"""Limits per client address on the citizen channel (calls that carry no token).

`limits` counts in this process's memory: its MongoDB storage needs update pipelines
and TTL indexes, which FerretDB 1.24 does not implement ("Aggregation pipelines are not
supported yet", "Index option expireAfterSeconds is not implemented yet", measured), so
each replica counts on its own and the limits are per replica (README)."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter


class Throttle:
    """Moving-window limits, by what is limited and the client's address."""

    def __init__(self, *, limits: dict[str, str]) -> None:
        self.rules: dict[str, list[RateLimitItem]] = {what: parse_many(spec) for what, spec in limits.items()}
        # A moving window: a burst at the edge of two fixed windows cannot double the limit.
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    async def hit(self, *, what: str, client: str) -> int | None:
        """Count one call: None if it may go on, else the seconds until one may."""
        for item in self.rules[what]:
            if not await self.limiter.hit(item, what, client):
                stats = await self.limiter.get_window_stats(item, what, client)
                return max(1, math.ceil(stats.reset_time - time.time()))
        return None
