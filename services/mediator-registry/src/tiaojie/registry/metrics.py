"""Registry's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class RegistryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.assignments = Counter(
            "tiaojie_assignments", "Assignment decisions by outcome", ["county", "outcome"], registry=registry
        )
