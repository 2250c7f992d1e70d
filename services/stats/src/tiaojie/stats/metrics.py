"""Stats' Prometheus metrics (low-cardinality labels only: county, stage, status, kind...).

Counters and histograms move only when a projection first reaches a state, so a
redelivered or replayed event never counts twice. Gauges are recomputed from the
database by a background loop: every replica reports the same values, so dashboards and
rules aggregate them with max(), never sum().
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
            "Time from registration to each stage (accept, assign, first_session, resolve = concluded)",
            ["stage", "county"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        self.concluded = Counter(
            "tiaojie_cases_concluded",
            "Cases concluded (调结), by outcome: resolved (调解成功) or failed (调解不成)",
            ["county", "outcome"],
            registry=registry,
        )
        self.deadlines = Counter(
            "tiaojie_case_deadlines",
            "Statutory clocks met or missed (acceptance: 受理; mediation: 调结), once per case",
            ["county", "clock", "outcome"],
            registry=registry,
        )
        self.referral_response_seconds = Histogram(
            "tiaojie_referral_response_seconds",
            "Time from a referral's arrival to its acceptance or refusal",
            ["agency_kind", "county"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        self.alerts_raised = Counter(
            "tiaojie_alerts_raised",
            "Alerts raised (hotspot, grave_risk, repeat_dispute)",
            ["county", "kind"],
            registry=registry,
        )
        self.cases_open = Gauge(
            "tiaojie_cases_open",
            "Cases open now (received, accepted, assigned, in mediation, transferred), by status",
            ["county", "status"],
            registry=registry,
        )
        self.cases_overdue = Gauge(
            "tiaojie_cases_overdue",
            "Open cases past a running statutory clock, by stage (acceptance, mediation)",
            ["county", "stage"],
            registry=registry,
        )
        self.referrals_overdue = Gauge(
            "tiaojie_referrals_overdue",
            "Open referrals and transfers the referral service marked overdue",
            ["county", "agency_kind"],
            registry=registry,
        )
        self.hotspots_active = Gauge(
            "tiaojie_hotspots_active",
            "Hotspot alerts active now",
            ["county"],
            registry=registry,
        )
        self.alerts_active = Gauge(
            "tiaojie_alerts_active",
            "Alerts active now, by kind",
            ["county", "kind"],
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "tiaojie_consumer_lag_messages",
            "Messages not yet committed by a service's consumer group, per topic",
            ["group", "topic"],
            registry=registry,
        )
        self.dlq_messages = Gauge(
            "tiaojie_dlq_messages",
            "Messages held in a dead-letter topic",
            ["topic"],
            registry=registry,
        )
        self.analytics_runs = Counter(
            "tiaojie_analytics_runs",
            "Daily analytics runs (counts, hotspot detection, forecasts), by outcome",
            ["outcome"],
            registry=registry,
        )
