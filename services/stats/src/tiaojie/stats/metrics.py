"""Stats' Prometheus metrics (low-cardinality labels only)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from tiaojie.runtime.metrics import STAGE_BUCKETS


class StatsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "tiaojie_cases_received",
            "Cases registered (counted once per case)",
            ["county", "channel", "category"],
            registry=registry,
        )
        self.stage_seconds = Histogram(
            "tiaojie_case_stage_seconds",
            "Time from registration to each stage",
            ["stage", "county"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
