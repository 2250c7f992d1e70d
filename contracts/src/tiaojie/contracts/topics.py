"""Every topic name of the mesh, in one place.

Each topic has exactly one producing service (agency inbound topics aside). Every
event is keyed by its aggregate id so one case, referral or mediator stays in order.
Deployments may prefix all names with a namespace (see tiaojie.runtime.settings).
"""

from __future__ import annotations

# intake: inbound submissions from other systems (grid systems, the 12345 platform).
SUBMISSIONS = "intake.submissions.v1"
# intake: the case lifecycle (CaseRegistered, CaseAccepted, ..., RiskRaised), keyed by case id.
CASES = "intake.cases.v1"
# intake: archived cases offered to the typical-case library, keyed by case id.
LIBRARY_NOMINATIONS = "intake.nominations.v1"

# mediator-registry: organisation snapshots, keyed by organisation id.
ORGANISATIONS = "registry.organisations.v1"
# mediator-registry: mediator snapshots (no personal data), keyed by mediator id.
MEDIATORS = "registry.mediators.v1"
# mediator-registry: assignment decisions, keyed by case id.
ASSIGNMENTS = "registry.assignments.v1"

# referral: referral and transfer lifecycle, keyed by referral id.
REFERRALS = "referral.referrals.v1"
# referral: registered agencies, keyed by agency id.
AGENCIES = "referral.agencies.v1"

# stats: hotspot and individual-risk alerts, keyed by alert id.
ALERTS = "stats.alerts.v1"

# case-library: nomination, curation and publication of typical cases, keyed by entry id.
LIBRARY = "library.entries.v1"

DLQ_SUFFIX = ".dlq"

# Which service produces which topic: the producer creates its topics (and their DLQs
# are created by the consumers that write to them).
PRODUCED_BY: dict[str, tuple[str, ...]] = {
    "intake": (CASES, LIBRARY_NOMINATIONS),
    "registry": (ORGANISATIONS, MEDIATORS, ASSIGNMENTS),
    "referral": (REFERRALS, AGENCIES),
    "stats": (ALERTS,),
    "library": (LIBRARY,),
}
# Inbound topics a service owns although others write to them.
INBOUND_OWNED_BY: dict[str, tuple[str, ...]] = {
    "intake": (SUBMISSIONS,),
}
# Which service reads which topic (besides every agency's referrals topic, which referral
# reads). The broker's ACLs are generated from these tables (tiaojie.runtime.access): a
# service reads nothing it does not list here.
CONSUMED_BY: dict[str, tuple[str, ...]] = {
    "intake": (SUBMISSIONS, ORGANISATIONS, ASSIGNMENTS, REFERRALS),
    "registry": (CASES,),
    "referral": (ORGANISATIONS, CASES),
    "stats": (CASES, ASSIGNMENTS, REFERRALS, ORGANISATIONS, MEDIATORS),
    # Its own topic too: every replica's search index follows it.
    "library": (LIBRARY_NOMINATIONS, CASES, LIBRARY),
}
# Topics anyone with a credential for them may write (systems, agencies): no single source.
INBOUND: tuple[str, ...] = (SUBMISSIONS,)

ALL_TOPICS: tuple[str, ...] = (
    SUBMISSIONS,
    CASES,
    LIBRARY_NOMINATIONS,
    ORGANISATIONS,
    MEDIATORS,
    ASSIGNMENTS,
    REFERRALS,
    AGENCIES,
    ALERTS,
    LIBRARY,
)


def service_source(service: str) -> str:
    """The CloudEvents `source` of every event a service produces."""
    return f"/tiaojie/{service}"


_PRODUCER = {topic: service for service, produced in PRODUCED_BY.items() for topic in produced}


def producer_of(topic: str) -> str | None:
    """The one service that produces a contract topic (None for inbound topics)."""
    return _PRODUCER.get(topic)


def dlq(topic: str) -> str:
    """Dead-letter topic of a topic."""
    return topic + DLQ_SUFFIX


def agency_referrals(agency_id: str) -> str:
    """Inbound topic on which an agency publishes its referrals to us."""
    return f"agency.{agency_id}.referrals.v1"


def agency_outcomes(agency_id: str) -> str:
    """Outbound topic on which we answer an agency (acceptance, outcome, rejection)."""
    return f"agency.{agency_id}.outcomes.v1"
