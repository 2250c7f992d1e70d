"""Intake rules: register (validate, protect, deduplicate, classify, rate, route), accept
or reject with a case number, follow the lifecycle to the archive, and react to the
registry's assignments and referral's hand-overs. No Kafka or HTTP in here: events leave
through the outbox of each case revision (`tiaojie.runtime.revisions`).

The rules live by idea: `registration` (new cases and duplicates), `acceptance`
(受理 and the case number), `actions` (the mediator's actions as pure rules) applied by
`mediation`, `reactions` (the other services' decisions) and `transitions` (the
generic, engine-backed change of a case). `IntakeService` is all of them together.
"""

from __future__ import annotations

from collections.abc import Iterable

from tiaojie.contracts.common import CASE_STATUS_LABELS
from tiaojie.intake.acceptance import format_case_number
from tiaojie.intake.access import Scope
from tiaojie.intake.actions import AGREEMENT_FORMS, FAILURE_ROUTES, FOLLOW_UP_METHODS, REJECTION_REASONS
from tiaojie.intake.audit import Auditing
from tiaojie.intake.classifier import Classifier
from tiaojie.intake.mediation import Mediating
from tiaojie.intake.metrics import IntakeMetrics
from tiaojie.intake.reactions import Reacting
from tiaojie.intake.registration import (
    Registration,
    action_id_for,
    case_id_for,
    new_tracking_code,
    normalise_tracking_code,
    request_hash,
)
from tiaojie.intake.repository import IntakeRepository
from tiaojie.intake.risk import RiskPolicy
from tiaojie.intake.settings import IntakeSettings
from tiaojie.intake.transitions import CaseWriter
from tiaojie.runtime import directory
from tiaojie.runtime.calendar import CHINA_TZ
from tiaojie.runtime.clock import Clock
from tiaojie.runtime.divisions import Divisions
from tiaojie.runtime.mongo import sweep_forever
from tiaojie.runtime.pii import Protector


class IntakeService(Reacting, Mediating, Auditing):
    """The intake rules; no Kafka or HTTP in here (events leave through the outbox)."""

    def __init__(
        self,
        *,
        repository: IntakeRepository,
        protector: Protector,
        divisions: Divisions,
        settings: IntakeSettings,
        clock: Clock,
        metrics: IntakeMetrics,
        classifier: Classifier | None = None,
    ) -> None:
        self.repo = repository
        self.writer = CaseWriter(repository=repository, clock=clock, metrics=metrics)
        self.protector = protector
        self.divisions = divisions
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.classifier = classifier or Classifier()
        self.tz = CHINA_TZ
        self.risk_policy = RiskPolicy(
            group_size=settings.group_size,
            large_amount=settings.large_amount,
            very_large_amount=settings.very_large_amount,
            repeat_visits=settings.repeat_visits,
        )

    async def scope_for(
        self, *, counties: Iterable[str], organisation_id: str | None = None, mediator_id: str | None = None
    ) -> Scope:
        """A caller's reach: its counties, and a named organisation with those under it."""
        allowed = frozenset(counties)
        organisations = None
        if organisation_id is not None:
            known = [o for county in sorted(allowed) for o in await self.repo.organisations_in(county)]
            organisations = directory.domain_of(organisation_id, known)
        return Scope(counties=allowed, mediator_id=mediator_id, organisations=organisations)

    async def reconcile_forever(self, interval: float) -> None:
        """Reconcile every `interval` seconds until cancelled."""
        await sweep_forever(self.reconcile, interval, what="intake reconciliation")


__all__ = [
    "AGREEMENT_FORMS",
    "CASE_STATUS_LABELS",
    "FAILURE_ROUTES",
    "FOLLOW_UP_METHODS",
    "REJECTION_REASONS",
    "IntakeService",
    "Registration",
    "action_id_for",
    "case_id_for",
    "format_case_number",
    "new_tracking_code",
    "normalise_tracking_code",
    "request_hash",
]
