"""Referral metrics (labels: county, agency kind, outcome, reason — never an id or a person).

`tiaojie_referrals_overdue` is a fact of the shared database, recomputed by every replica:
aggregate it across replicas with max(), not sum(). The counters count what this replica
did; each step is done by exactly one replica, so sum() across replicas is right.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tiaojie.runtime.metrics import STAGE_BUCKETS

MEDIATION_BODY = "mediation_body"  # the agency_kind label of hand-overs between mediation bodies


class ReferralMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.referrals = Counter(
            "tiaojie_referrals",
            "Referral steps reached (received, accepted, declined, resolved, failed, withdrawn, rejected)",
            ["agency_kind", "county", "outcome"],
            registry=registry,
        )
        self.response_seconds = Histogram(
            "tiaojie_referral_response_seconds",
            "Time from a referral's arrival to the receiving body's answer (accept or decline)",
            ["agency_kind"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        self.overdue = Gauge(
            "tiaojie_referrals_overdue",
            "Open referrals and transfers past a deadline (transfers: agency_kind=mediation_body)",
            ["county", "agency_kind"],
            registry=registry,
        )
        self.escalations = Counter(
            "tiaojie_escalations",
            "Escalations: overdue_response / overdue_handling (to the parent body and county centre), "
            "and 上报 (grave, cross_county)",
            ["county", "reason"],
            registry=registry,
        )
        self.transfers = Counter(
            "tiaojie_transfers",
            "Transfer steps (requested, accepted, declined, completed) by kind",
            ["county", "kind", "outcome"],
            registry=registry,
        )
        self.timers_fired = Counter(
            "tiaojie_referral_timers_fired",
            "Reminders (催办) and overdue escalations fired by this replica",
            ["action"],
            registry=registry,
        )
        self._overdue_seen: set[tuple[str, str]] = set()

    def set_overdue(self, counts: dict[tuple[str, str], int]) -> None:
        """Replace the gauge's values (series that dropped to zero are set to zero)."""
        for labels in self._overdue_seen - counts.keys():
            self.overdue.labels(*labels).set(0)
        for labels, value in counts.items():
            self.overdue.labels(*labels).set(value)
        self._overdue_seen |= counts.keys()
