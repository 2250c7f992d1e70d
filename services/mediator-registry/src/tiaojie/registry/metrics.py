"""Registry's Prometheus metrics (labels: county, grade, status, outcome, norm; never an id)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LOAD_BUCKETS = (0, 1, 2, 3, 5, 8, 10, 15, 20, 30, 50)


class RegistryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.assignments = Counter(
            "tiaojie_assignments",
            "Assignment decisions by outcome (assigned in the routed organisation, escalated up "
            "the hierarchy, manual reassignment by a centre user, failed: nobody eligible)",
            ["county", "outcome"],
            registry=registry,
        )
        self.mediators = Gauge(
            "tiaojie_mediators",
            "Mediators by grade and effective status (active, suspended, revoked) today",
            ["county", "grade", "status"],
            registry=registry,
        )
        self.load = Histogram(
            "tiaojie_mediator_load",
            "Open cases of a mediator right after they were assigned one",
            ["county"],
            buckets=LOAD_BUCKETS,
            registry=registry,
        )
        self.compliance_gap = Gauge(
            "tiaojie_compliance_gap",
            "Full-time mediators missing against the staffing norms (village, township, industry, "
            "county_centre), summed over the county's organisations",
            ["county", "norm"],
            registry=registry,
        )
        self.imports = Counter(
            "tiaojie_registry_import_rows",
            "Rows of roster imports by kind and result (valid, invalid, imported)",
            ["kind", "result"],
            registry=registry,
        )
