"""Referral rules: agencies, referrals in, transfers between bodies, deadlines and timers,
and the closed loop back to the sender. No Kafka or HTTP in here: events leave with the
revisions of the storage engine (`tiaojie.runtime.revisions`), whose unique claims make
every change happen once across replicas.

The rules live by idea: `agencies` (registration and broker credentials), `referrals`
(receiving and answering them), `transfers` (转办/交办/上报), `projections` (what the
registry and intake tell us, and the loop it closes), `timers` (催办 and overdue), with
`lifecycle` (the state machines), `routing` (the hierarchy's rules) and `subjects` (a
rule's change through the engine). `ReferralService` is all of them together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tiaojie.referral import lifecycle
from tiaojie.referral.agencies import AgencyRules
from tiaojie.referral.deadlines import DeadlineRules
from tiaojie.referral.metrics import ReferralMetrics
from tiaojie.referral.models import ReferralDoc, Subject, TransferDoc
from tiaojie.referral.projections import Projections
from tiaojie.referral.referrals import ReferralRules, referral_id_for
from tiaojie.referral.repository import ReferralRepository
from tiaojie.referral.routing import Hierarchy
from tiaojie.referral.settings import ReferralSettings
from tiaojie.referral.subjects import SOURCE, SubjectStore, TimerCursor
from tiaojie.referral.timers import TimerRules
from tiaojie.referral.transfers import TransferRules, transfer_id_for
from tiaojie.runtime.clock import Clock
from tiaojie.runtime.divisions import Divisions
from tiaojie.runtime.pii import Protector

if TYPE_CHECKING:
    from tiaojie.referral.broker import AgencyAccess


class ReferralService(AgencyRules, ReferralRules, TransferRules, Projections, TimerRules):
    """The referral rules (see the module docstring)."""

    def __init__(
        self,
        *,
        repository: ReferralRepository,
        protector: Protector,
        divisions: Divisions,
        rules: DeadlineRules,
        settings: ReferralSettings,
        clock: Clock,
        metrics: ReferralMetrics,
        access: AgencyAccess,
    ) -> None:
        self.repo = repository
        cursor = TimerCursor(repository=repository, clock=clock)
        self.referrals = SubjectStore(
            repository=repository,
            revisions=repository.referrals,
            model=ReferralDoc,
            kind="referral",
            noun=("移交", "referral"),
            cursor=cursor,
        )
        self.transfers = SubjectStore(
            repository=repository,
            revisions=repository.transfers,
            model=TransferDoc,
            kind="transfer",
            noun=("转交", "transfer"),
            cursor=cursor,
        )
        self.hierarchy = Hierarchy(repository=repository)
        self.protector = protector
        self.divisions = divisions
        self.rules = rules
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.access = access

    async def extend(
        self,
        *,
        subject_kind: str,
        subject_id: str,
        by: str,
        counties: list[str],
        days: int,
        by_agreement: bool,
        reason: str,
        acting_for: str | None = None,
    ) -> Subject:
        """Extend a handling deadline (delegation and 交办 by agreement; petition once)."""
        now = self.clock.now()

        def extended(doc: Subject) -> list[lifecycle.Effect]:
            return lifecycle.extend(
                doc, self.rules, days=days, by_agreement=by_agreement, reason=reason, by=by, now=now
            )

        if subject_kind == "referral":
            await self.referral_for(subject_id, counties=counties, agency_id=None, acting_for=acting_for)
            return (await self.referrals.apply(subject_id, extended, now=now)).doc
        await self.transfer_for(subject_id, counties=counties, acting_for=acting_for)
        return (await self.transfers.apply(subject_id, extended, now=now)).doc


__all__ = ["SOURCE", "ReferralService", "referral_id_for", "transfer_id_for"]
