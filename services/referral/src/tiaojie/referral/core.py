"""What every group of referral's rules works with (ReferralService composes the groups)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tiaojie.contracts.common import AgencyKind
from tiaojie.referral.deadlines import DeadlineRules
from tiaojie.referral.metrics import MEDIATION_BODY, ReferralMetrics
from tiaojie.referral.models import ReferralDoc, TransferDoc
from tiaojie.referral.repository import ReferralRepository
from tiaojie.referral.routing import Hierarchy
from tiaojie.referral.settings import ReferralSettings
from tiaojie.referral.subjects import SubjectStore
from tiaojie.runtime.clock import Clock
from tiaojie.runtime.divisions import Divisions
from tiaojie.runtime.pii import Protector

if TYPE_CHECKING:
    # Injected (app.py): the rules never talk to the broker themselves.
    from tiaojie.referral.broker import AgencyAccess


def within(reach: frozenset[str] | None, *organisations: str | None) -> bool:
    """True if a caller of this reach acts for any of these organisations."""
    return reach is None or any(o in reach for o in organisations if o)


def kind_label(kind: AgencyKind | str | None) -> str:
    """The agency_kind label of a metric (hand-overs between mediation bodies have none)."""
    return str(kind) if kind else MEDIATION_BODY


class ReferralCore:
    """The parts the rules share: the stores, the hierarchy, the clocks and the metrics."""

    repo: ReferralRepository
    referrals: SubjectStore[ReferralDoc]
    transfers: SubjectStore[TransferDoc]
    hierarchy: Hierarchy
    protector: Protector
    divisions: Divisions
    rules: DeadlineRules
    settings: ReferralSettings
    clock: Clock
    metrics: ReferralMetrics
    access: AgencyAccess

    async def reach(self, acting_for: str | None) -> frozenset[str] | None:
        """The organisations an organisation-scoped caller acts for: its own and those under
        it (None: a caller of whole counties). Computed once per request, so that the engine's
        visibility check (synchronous, on the head as stored) can use it."""
        if acting_for is None:
            return None
        own = await self.hierarchy.get(acting_for)
        found = {acting_for}
        if own is None:
            return frozenset(found)
        members = await self.hierarchy.in_county(own.county)
        grew = True
        while grew:
            below = {o.id for o in members if o.parent_id in found} - found
            grew = bool(below)
            found |= below
        return frozenset(found)

    async def get_referral(self, referral_id: str) -> ReferralDoc | None:
        """A referral by id, whoever asks (callers check the scope)."""
        return await self.referrals.get(referral_id)
