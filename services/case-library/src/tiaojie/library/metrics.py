"""The library's Prometheus metrics (labels: county, category, action, field, kind — never
an entry, a case or a person)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

QUERY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class LibraryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.nominations = Counter(
            "tiaojie_library_nominations",
            "Nominations stored (anonymised), by county and category",
            ["county", "category"],
            registry=registry,
        )
        self.curation = Counter(
            "tiaojie_library_curation",
            "Curation steps, by action (edit, publish, decline, withdraw) and county",
            ["action", "county"],
            registry=registry,
        )
        self.refused = Counter(
            "tiaojie_library_personal_data_refusals",
            "Edits and publications refused because personal data remained, by field and kind",
            ["field", "kind"],
            registry=registry,
        )
        self.anonymised = Counter(
            "tiaojie_library_anonymised_items",
            "Items of personal data removed from nominations, by kind",
            ["kind"],
            registry=registry,
        )
        self.query_seconds = Histogram(
            "tiaojie_library_query_seconds",
            "Time to answer a search or a suggestion from the index",
            ["kind"],
            buckets=QUERY_BUCKETS,
            registry=registry,
        )
        self.index_entries = Gauge(
            "tiaojie_library_index_entries", "Published cases in this replica's index", registry=registry
        )
        self.index_events = Counter(
            "tiaojie_library_index_events",
            "Library events seen by this replica's index tail, by outcome (applied, stale, ignored)",
            ["outcome"],
            registry=registry,
        )
