"""Searching up the hierarchy for a case's mediator: the routed organisation first, then
its parents, then the county centre; with the explanation of the choice or the failure.

Live figures (load, recent assignments) come from the candidates' load ledgers, read
once per organisation searched; the reservation that follows (assignment.py) re-checks
the capacity on the chosen mediator's ledger, where it cannot race.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from tiaojie.contracts.common import OrganisationKind
from tiaojie.contracts.registry import Candidate, Exclusion
from tiaojie.registry.ledger import cases_held, received
from tiaojie.registry.matching import (
    CaseNeeds,
    Counts,
    Policy,
    explain,
    prefilter,
    rank,
    summarise_exclusions,
)
from tiaojie.registry.models import MediatorDoc, OrganisationDoc
from tiaojie.registry.repository import RegistryRepository
from tiaojie.registry.settings import RegistrySettings


@dataclass
class Search:
    """The outcome of searching up the hierarchy for a mediator."""

    tried: list[str] = field(default_factory=list)
    excluded: list[Exclusion] = field(default_factory=list)
    organisation: OrganisationDoc | None = None
    mediator: MediatorDoc | None = None
    ranked: list[Candidate] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # organisation id -> why not searched


def policy_of(settings: RegistrySettings) -> Policy:
    return Policy(
        required_grade=settings.required_grade,
        weights=settings.weights,
        default_capacity=settings.default_capacity,
        part_time_capacity=settings.part_time_capacity,
    )


class Searcher:
    """The search and its explanations; reads only."""

    def __init__(self, *, repository: RegistryRepository, settings: RegistrySettings) -> None:
        self.repo = repository
        self.settings = settings
        self.policy = policy_of(settings)

    def window_start(self, today: date) -> date:
        """The first day of the fairness window."""
        return today - timedelta(days=self.settings.fairness_window_days - 1)

    async def search(self, needs: CaseNeeds, *, county: str, start: str | None, today: date) -> Search:
        """The routed organisation first, then its parents, then the county centre."""
        found = Search()
        current = start or await self.county_centre(county)
        if start is None and current is None:
            found.skipped["-"] = "unrouted"
        while (
            current and current not in found.tried and len(found.tried) <= self.settings.max_escalation_depth
        ):
            found.tried.append(current)
            org = await self.repo.get_organisation(current)
            if org is None:
                found.skipped[current] = "unknown_organisation"
            elif not org.active or not org.filed:
                found.skipped[current] = "organisation_inactive"
            else:
                mediators = await self.repo.mediators_of(org.id)
                ranking = rank(
                    org.id,
                    mediators,
                    await self.counts(mediators=mediators, needs=needs, today=today),
                    needs,
                    today=today,
                    policy=self.policy,
                )
                found.excluded.extend(ranking.excluded)
                if ranking.ranked:
                    best = ranking.ranked[0].mediator_id
                    found.organisation = org
                    found.mediator = next(m for m in mediators if m.id == best)
                    found.ranked = ranking.ranked
                    return found
            parent = org.parent_id if org is not None else None
            if parent and parent not in found.tried:
                current = parent
            else:
                centre = await self.county_centre(county)
                current = centre if centre not in found.tried else None
        return found

    async def counts(
        self, *, mediators: Sequence[MediatorDoc], needs: CaseNeeds, today: date
    ) -> dict[str, Counts]:
        """Load (other cases held) and recent assignments of the mediators that pass the
        fixed rules, from their ledgers."""
        wanted = [m.id for m in mediators if not prefilter(m, needs, today=today, policy=self.policy)]
        ledgers = await self.repo.load_store.get_many(wanted)
        since = self.window_start(today)
        return {
            m: Counts(
                load=len(cases_held(ledgers.get(m), except_case=needs.case_id)),
                recent=received(ledgers.get(m), since=since),
            )
            for m in wanted
        }

    async def county_centre(self, county: str) -> str | None:
        centres = [
            o
            for o in await self.repo.organisations_in(county)
            if o.kind == OrganisationKind.CENTRE and o.level == "county" and o.active
        ]
        return min(centres, key=lambda o: o.id).id if centres else None

    async def reason(self, search: Search, needs: CaseNeeds, escalated_from: str | None) -> str:
        assert search.mediator is not None and search.organisation is not None
        from_name = None
        if escalated_from:
            origin = await self.repo.get_organisation(escalated_from)
            why = summarise_exclusions([e for e in search.excluded if e.organisation_id == escalated_from])
            from_name = f"{origin.name if origin else escalated_from}（{why}）"
        return explain(
            search.mediator,
            search.ranked[0],
            needs,
            organisation_name=search.organisation.name,
            escalated_from_name=from_name,
            window_days=self.settings.fairness_window_days,
        )

    def failure_reason(self, search: Search) -> str:
        if not search.tried:
            return (
                "案件未分流到调解组织，且所在县区没有一站式调解中心"
                " / case has no organisation and the county has no centre"
            )
        return (
            f"已逐级查找{len(search.tried)}个调解组织，均无符合条件的调解员：{summarise_exclusions(search.excluded)}"
            f" / no eligible mediator in {len(search.tried)} organisation(s) up the hierarchy"
        )
