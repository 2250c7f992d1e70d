"""The console's Prometheus metrics (low-cardinality labels only)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class ConsoleMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sign_ins = Counter(
            "tiaojie_console_sign_ins", "Sign-in attempts by outcome", ["outcome"], registry=registry
        )
        self.sessions_expired = Counter(
            "tiaojie_console_sessions_expired", "Sessions ended by idle or absolute expiry", registry=registry
        )
        self.csrf_refused = Counter(
            "tiaojie_console_csrf_refused",
            "Unsafe requests refused for a missing or wrong CSRF token",
            registry=registry,
        )
        self.upstream = Histogram(
            "tiaojie_console_upstream_seconds",
            "Calls to the services on a user's behalf",
            ["service", "status"],
            registry=registry,
        )
        self.pages = Counter(
            "tiaojie_console_pages", "Pages served by area and status", ["area", "status"], registry=registry
        )
