"""Intake's Prometheus metrics (labels: county, channel, category, field — never a person)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class IntakeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "tiaojie_cases_received", "Cases registered", ["county", "channel", "category"], registry=registry
        )
        self.validation_failures = Counter(
            "tiaojie_validation_failures",
            "Submissions refused, by channel and top-level field",
            ["channel", "field"],
            registry=registry,
        )
        self.duplicates_linked = Counter(
            "tiaojie_duplicates_linked",
            "Submissions linked to an open case instead of a new one",
            registry=registry,
        )
