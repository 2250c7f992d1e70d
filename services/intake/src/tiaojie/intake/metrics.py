"""Intake's Prometheus metrics (labels: county, channel, category, field, stage — never a
person or a case)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from tiaojie.runtime.metrics import STAGE_BUCKETS


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
        self.stage_seconds = Histogram(
            "tiaojie_case_stage_seconds",
            "Time from registration to a stage of the case (accept: acceptance decision)",
            ["stage", "county"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        self.transitions = Counter(
            "tiaojie_case_transitions",
            "Lifecycle actions applied, by action and county",
            ["action", "county"],
            registry=registry,
        )
