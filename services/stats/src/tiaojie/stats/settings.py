"""Stats settings (TIAOJIE_* environment variables)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from tiaojie.runtime.settings import ServiceSettings


class StatsSettings(ServiceSettings):
    # Tokens must name this service (`aud`); not a setting, so no test or deployment can widen it.
    audience: ClassVar[str | None] = "stats"
    service_name: str = "stats"
    port: int = 8004
    database_name: str = "tiaojie_stats"
    # Gauges (open, overdue, active alerts) are recomputed from the database this often.
    gauge_interval: float = Field(default=30.0, gt=0)
    # Consumer lag and dead-letter sizes are read from Kafka this often (0: never).
    kafka_monitor_interval: float = Field(default=30.0, ge=0)
    # The daily analytics run (daily counts, hotspot detection, forecasts) is tried this
    # often; it runs at most once per local day and only after `analytics_hour` (local).
    analytics_interval: float = Field(default=600.0, gt=0)
    analytics_hour: int = Field(default=1, ge=0, le=23)
    hotspot_method: str = Field(default="nbcusum", pattern=r"^(nbcusum|c2)$")
    # Days of history the detectors and forecasts read.
    history_days: int = Field(default=730, ge=60, le=3000)
    # A repeat dispute: another case with at least this many of the same parties.
    repeat_min_shared_parties: int = Field(default=2, ge=1)
    repeat_window_days: int = Field(default=365, ge=1)
