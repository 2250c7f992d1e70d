"""Prometheus: one registry per process, exposed at /metrics.

Label values stay low-cardinality (county, category, channel, agency kind, status):
never a person, a phone number or a case id.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Buckets for handling times measured in seconds, from a second to a few months.
STAGE_BUCKETS = (
    1,
    10,
    60,
    300,
    900,
    3600,
    4 * 3600,
    12 * 3600,
    86400,
    2 * 86400,
    3 * 86400,
    7 * 86400,
    15 * 86400,
    30 * 86400,
    45 * 86400,
    60 * 86400,
    90 * 86400,
)


def new_registry() -> CollectorRegistry:
    """A registry with the process, platform and GC collectors (RSS, CPU, GC)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> tuple[bytes, str]:
    """Text exposition of a registry and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST
