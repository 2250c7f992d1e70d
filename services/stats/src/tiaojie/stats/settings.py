"""Stats settings (TIAOJIE_* environment variables)."""

from __future__ import annotations

from tiaojie.runtime.settings import ServiceSettings


class StatsSettings(ServiceSettings):
    service_name: str = "stats"
    port: int = 8004
    database_name: str = "tiaojie_stats"
