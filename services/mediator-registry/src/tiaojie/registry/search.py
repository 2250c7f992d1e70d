"""Searching up the hierarchy for a case's mediator: the routed organisation first, then
its parents, then the county centre; with the explanation of the choice or the failure.

Live figures (load, recent assignments) come from the candidates' load ledgers. What a
search reads (organisations, their members, the ledgers) is read once per `Reads`: one
per search, or one for a whole batch of cases, which also counts the places the batch has
planned already, so that two cases of one batch do not both take a mediator's last place.
The reservation that follows (assignment.py) re-checks the capacity on the chosen
mediator's ledger, where it cannot race. The county centre is the directory's rule
(`tiaojie.runtime.directory.county_centre`), applied to the registry's own organisations.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

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
from tiaojie.runtime.directory import county_centre
from tiaojie.runtime.mongo import Document


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


class Reads:
    """What searches read, each thing once (organisations, their members, counties'
    organisations, ledgers), and the places a batch has planned but not yet reserved."""

    def __init__(self, repository: RegistryRepository) -> None:
        self.repo = repository
        self._organisations: dict[str, OrganisationDoc | None] = {}
        self._members: dict[str, list[MediatorDoc]] = {}
        self._counties: dict[str, list[OrganisationDoc]] = {}
        self._ledgers: dict[str, Document | None] = {}
        self._planned: dict[str, set[str]] = defaultdict(set)  # mediator -> cases planned

    async def organisation(self, organisation_id: str) -> OrganisationDoc | None:
        if organisation_id not in self._organisations:
            self._organisations[organisation_id] = await self.repo.get_organisation(organisation_id)
        return self._organisations[organisation_id]

    async def mediators_of(self, organisation_id: str) -> list[MediatorDoc]:
        if organisation_id not in self._members:
            self._members[organisation_id] = await self.repo.mediators_of(organisation_id)
        return self._members[organisation_id]

    async def organisations_in(self, county: str) -> list[OrganisationDoc]:
        if county not in self._counties:
            self._counties[county] = await self.repo.organisations_in(county)
        return self._counties[county]

    async def ledgers(self, mediator_ids: Iterable[str]) -> dict[str, Document | None]:
        wanted = sorted(set(mediator_ids))
        missing = [m for m in wanted if m not in self._ledgers]
        if missing:
            found = await self.repo.load_store.get_many(missing)
            self._ledgers.update({m: found.get(m) for m in missing})
        return {m: self._ledgers[m] for m in wanted}

    async def prefetch(self, organisation_ids: Iterable[str]) -> None:
        """Read the organisations a batch starts from, their members and those members'
        ledgers, concurrently (escalations are read when a search gets there)."""
        ids = sorted(set(organisation_ids))
        await asyncio.gather(*(self.organisation(o) for o in ids), *(self.mediators_of(o) for o in ids))
        await self.ledgers(m.id for o in ids for m in self._members[o])

    def plan(self, mediator_id: str, case_id: str) -> None:
        """Count a place the batch has planned for a case (before its reservation)."""
        self._planned[mediator_id].add(case_id)

    def counts(self, mediator_id: str, *, case_id: str, since: date) -> Counts:
        """Load (other cases held or planned) and recent assignments (received, plus the
        cases the batch has planned that the mediator does not hold yet)."""
        doc = self._ledgers.get(mediator_id)
        held = cases_held(doc, except_case=case_id)
        planned = self._planned.get(mediator_id, set()) - {case_id}
        return Counts(
            load=len(held | planned),
            recent=received(doc, since=since) + len(planned - cases_held(doc)),
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

    async def search(
        self, needs: CaseNeeds, *, county: str, start: str | None, today: date, reads: Reads | None = None
    ) -> Search:
        """The routed organisation first, then its parents, then the county centre."""
        reads = reads or Reads(self.repo)
        found = Search()
        current = start or await self.county_centre(county, reads=reads)
        if start is None and current is None:
            found.skipped["-"] = "unrouted"
        while (
            current and current not in found.tried and len(found.tried) <= self.settings.max_escalation_depth
        ):
            found.tried.append(current)
            org = await reads.organisation(current)
            if org is None:
                found.skipped[current] = "unknown_organisation"
            elif not org.active or not org.filed:
                found.skipped[current] = "organisation_inactive"
            else:
                mediators = await reads.mediators_of(org.id)
                ranking = rank(
                    org.id,
                    mediators,
                    await self.counts(mediators=mediators, needs=needs, today=today, reads=reads),
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
                centre = await self.county_centre(county, reads=reads)
                current = centre if centre not in found.tried else None
        return found

    async def counts(
        self, *, mediators: Sequence[MediatorDoc], needs: CaseNeeds, today: date, reads: Reads | None = None
    ) -> dict[str, Counts]:
        """Load (other cases held) and recent assignments of the mediators that pass the
        fixed rules, from their ledgers."""
        reads = reads or Reads(self.repo)
        wanted = [m.id for m in mediators if not prefilter(m, needs, today=today, policy=self.policy)]
        await reads.ledgers(wanted)
        since = self.window_start(today)
        return {m: reads.counts(m, case_id=needs.case_id, since=since) for m in wanted}

    async def county_centre(self, county: str, *, reads: Reads | None = None) -> str | None:
        """The county's centre by the directory's rule, among the registry's organisations."""
        reads = reads or Reads(self.repo)
        centre = county_centre(await reads.organisations_in(county), county=county)
        return centre.id if centre is not None else None

    async def reason(
        self, search: Search, needs: CaseNeeds, escalated_from: str | None, *, reads: Reads | None = None
    ) -> str:
        assert search.mediator is not None and search.organisation is not None
        reads = reads or Reads(self.repo)
        from_name = None
        if escalated_from:
            origin = await reads.organisation(escalated_from)
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
