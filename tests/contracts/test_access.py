"""The broker's ACLs, generated from the topic contract: exactly what each service
produces and consumes, nothing on the cluster, and the services' code consumes nothing
the contract does not list."""

from __future__ import annotations

from pathlib import Path

import pytest

from tiaojie.contracts import topics
from tiaojie.runtime.access import (
    SERVICES,
    agency_grants,
    provisioner_grants,
    referral_agency_grants,
    service_grants,
)
from tiaojie.runtime.settings import RuntimeSettings

# Read outside the consumer: every library replica's search index tails its own topic.
TAILED = {"library": {topics.LIBRARY}}

pytestmark = pytest.mark.unit

NS = RuntimeSettings(namespace="ns", kafka_username="u", kafka_password="p")  # type: ignore[arg-type]


def ops(service: str, operation: str) -> set[str]:
    return {g.name for g in service_grants(NS, service) if g.operation == operation and g.resource == "topic"}


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_reads_what_it_consumes_and_writes_what_it_produces(service: str) -> None:
    consumed = {NS.topic(t) for t in topics.CONSUMED_BY[service]}
    produced = {NS.topic(t) for t in topics.PRODUCED_BY[service]}
    assert ops(service, "read") == consumed
    assert ops(service, "write") == produced | {topics.dlq(t) for t in consumed}
    grants = service_grants(NS, service)
    assert not [g for g in grants if g.resource == "cluster"]  # idempotence needs no cluster right
    groups = [g for g in grants if g.resource == "group" and g.operation == "read"]
    assert [(g.name, g.prefixed) for g in groups] == [(NS.group(service), True)]
    assert all(g.principal == NS.group(service) for g in grants)


def test_nobody_but_intake_reads_the_applicants() -> None:
    readers = [s for s in SERVICES if NS.topic(topics.SUBMISSIONS) in ops(s, "read")]
    assert readers == ["intake"]


def test_only_the_stats_monitor_describes_other_topics_and_groups() -> None:
    for service in SERVICES:
        described = {g.name for g in service_grants(NS, service) if g.operation == "describe"}
        assert bool(described) == (service == "stats")


def test_an_agency_writes_its_inbound_topic_and_reads_its_outcomes() -> None:
    grants = agency_grants(NS, "court-x")
    assert {(g.operation, g.resource, g.name, g.prefixed) for g in grants} == {
        ("write", "topic", "ns.agency.court-x.referrals.v1", False),
        ("read", "topic", "ns.agency.court-x.outcomes.v1", False),
        ("read", "group", "ns.agency.court-x.", True),
    }
    system = agency_grants(NS, "grid", system=True)
    assert [(g.operation, g.name) for g in system] == [("write", "ns.intake.submissions.v1")]
    referral = {(g.operation, g.name) for g in referral_agency_grants(NS, "court-x")}
    assert ("read", "ns.agency.court-x.referrals.v1") in referral
    assert ("write", "ns.agency.court-x.outcomes.v1") in referral
    assert ("write", "ns.agency.court-x.referrals.v1") not in referral  # nobody writes as the court


def test_only_the_provisioner_holds_a_cluster_right() -> None:
    cluster = {(g.operation, g.resource) for g in provisioner_grants(NS) if g.resource == "cluster"}
    assert cluster == {("alter", "cluster"), ("describe", "cluster")}
    topics_ = {(g.name, g.prefixed) for g in provisioner_grants(NS) if g.resource == "topic"}
    assert topics_ == {("ns.agency.", True)}


def test_the_services_consume_only_what_the_contract_lists(divisions_dir: Path) -> None:
    """Built as each service's app.py builds it (nothing connects until started)."""
    from tiaojie.intake.app import create_app as intake
    from tiaojie.intake.settings import IntakeSettings
    from tiaojie.library.app import create_app as library
    from tiaojie.library.settings import LibrarySettings
    from tiaojie.referral.app import create_app as referral
    from tiaojie.referral.settings import ReferralSettings
    from tiaojie.registry.app import create_app as registry
    from tiaojie.registry.settings import RegistrySettings
    from tiaojie.stats.app import create_app as stats
    from tiaojie.stats.settings import StatsSettings

    base = {**NS.model_dump(), "divisions_dir": divisions_dir}
    built = {
        "intake": intake(IntakeSettings(**base)),
        "referral": referral(ReferralSettings(**base)),
        "registry": registry(RegistrySettings(**base)),
        "stats": stats(StatsSettings(**base)),
        "library": library(LibrarySettings(**base)),
    }
    assert set(built) == set(SERVICES)
    for service, app in built.items():
        host = app.state.host
        # Exactly: a topic listed but not read is a grant nobody needs.
        assert set(host.consumer.topics) | TAILED.get(service, set()) == set(topics.CONSUMED_BY[service]), (
            service
        )
        assert set(host.produces) <= set(topics.PRODUCED_BY[service]), service
