"""The organisation directory: the registry's organisations as the other services keep
them, and the routing rules over them, written once.

The registry owns organisations and announces each change as a snapshot
(`OrganisationUpdated` on `registry.organisations.v1`). Intake routes new disputes with
it, referral finds the receiving body of a hand-over and walks the hierarchy, the
registry itself finds a county's centre to escalate to. `Directory` is the projection
(on the storage engine: FerretDB honours no version-guarded upsert, so two replicas
projecting two versions at once could otherwise leave the older one), and `route`,
`county_centre` and `township_committee` are the rules, pure functions over anything
shaped like an organisation.

The routing rule, in order:
1. 重大 (grave) and cross-county disputes go to the county one-stop centre;
2. an active industry/professional committee of the county that covers the category wins;
3. otherwise the township committee of the dispute's location;
4. otherwise the county one-stop centre;
5. otherwise nobody: the case stays unrouted and a desk routes it at acceptance.
Ties are broken by organisation id so every replica routes alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from tiaojie.contracts.common import Category, OrganisationKind, RiskLevel
from tiaojie.contracts.registry import OrganisationUpdated
from tiaojie.runtime.mongo import Document
from tiaojie.runtime.revisions import Change, Revisions

# The registry's version of an organisation; the engine's own `version` counts the
# projection's revisions. Projections written before the engine kept the registry's
# version as `version`, which is why it is read as a fallback.
SOURCE_VERSION = "source_version"
COUNTY_LEVEL = "county"


class OrganisationLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> Any: ...
    @property
    def level(self) -> Any: ...
    @property
    def county(self) -> str: ...
    @property
    def division_code(self) -> str: ...
    @property
    def active(self) -> bool: ...


Org = TypeVar("Org", bound=OrganisationLike)


class Organisation(BaseModel):
    """One organisation as the registry last announced it."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    id: str = Field(alias="_id")
    source_version: int = 0
    name: str
    short_name: str = ""
    kind: str
    level: str
    county: str
    division_code: str
    parent_id: str | None = None
    categories: list[str] = Field(default_factory=list)
    active: bool = True
    stationed_at: str | None = None
    brand_name: str | None = None


# -- the rules ---------------------------------------------------------------------------


def _first(orgs: Iterable[Org]) -> Org | None:
    return min(orgs, key=lambda o: o.id, default=None)


def county_centre(organisations: Iterable[Org], *, county: str | None = None) -> Org | None:
    """The county's active 矛盾纠纷多元化解中心 (the lowest id if there are several)."""
    return _first(
        o
        for o in organisations
        if o.active
        and str(o.kind) == OrganisationKind.CENTRE
        and str(o.level) == COUNTY_LEVEL
        and (county is None or o.county == county)
    )


def township_committee(organisations: Iterable[Org], *, township: str) -> Org | None:
    """The active people's mediation committee of the township (乡镇/街道) the code lies in."""
    return _first(
        o
        for o in organisations
        if o.active and str(o.kind) == OrganisationKind.TOWNSHIP_COMMITTEE and o.division_code == township[:9]
    )


def industry_committee(organisations: Iterable[Org], *, category: Category) -> Org | None:
    """The county's active industry/professional committee that covers the category."""
    if category == Category.OTHER:
        return None
    return _first(
        o
        for o in organisations
        if o.active
        and str(o.kind) == OrganisationKind.INDUSTRY_COMMITTEE
        and str(category) in [str(c) for c in getattr(o, "categories", ())]
    )


# How far up a parent chain a walk goes: a cycle in the registry's data must not loop.
MAX_DEPTH = 20


class HasParent(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def parent_id(self) -> str | None: ...


def domain_of(root: str, organisations: Iterable[HasParent], *, unknown_root: bool = True) -> frozenset[str]:
    """The organisation and every organisation whose parent chain reaches it: what a token
    naming `root` acts for. An organisation the directory does not hold reaches only
    itself, or nothing with `unknown_root=False`."""
    parent = {o.id: o.parent_id for o in organisations}
    inside: set[str] = {root} if unknown_root or root in parent else set()
    for org_id in parent:
        current: str | None = org_id
        for _ in range(MAX_DEPTH):
            if current is None:
                break
            if current == root:
                inside.add(org_id)
                break
            current = parent.get(current)
    return frozenset(inside)


@dataclass(frozen=True)
class Route:
    organisation: Organisation | None
    reason: str  # code
    reason_zh: str


def route(
    *,
    county: str,
    township: str | None,
    category: Category,
    risk_level: RiskLevel,
    cross_county: bool,
    in_county: Sequence[Organisation],
) -> Route:
    """The organisation a dispute goes to, from the county's organisations, by the rule in
    this module's docstring."""
    active = [o for o in in_county if o.active and o.county == county]
    centre = county_centre(active)
    if risk_level == RiskLevel.GRAVE and centre is not None:
        return Route(centre, "grave_to_centre", "重大风险案件由县级一站式调解中心受理")
    if cross_county and centre is not None:
        return Route(centre, "cross_county_to_centre", "跨县区纠纷由县级一站式调解中心受理")
    industry = industry_committee(active, category=category)
    if industry is not None:
        return Route(industry, "industry_committee", "本县区有覆盖该类纠纷的行业性专业性调委会")
    if township:
        local = township_committee(active, township=township)
        if local is not None:
            return Route(local, "township_committee", "纠纷发生地乡镇（街道）人民调解委员会")
    if centre is not None:
        return Route(centre, "county_centre", "无对口调解组织，由县级一站式调解中心受理")
    return Route(None, "unrouted", "未找到可受理的调解组织，请窗口人工分流")


# -- the projection ----------------------------------------------------------------------


def projected(state: Document | None, event: OrganisationUpdated) -> Change | None:
    """The registry's newer version of an organisation; an older or repeated one changes nothing."""
    current = state or {}
    if event.version <= int(current.get(SOURCE_VERSION) or current.get("version") or 0):
        return None
    fields = event.model_dump(mode="json", exclude={"organisation_id", "version"})
    return Change({**current, **fields, SOURCE_VERSION: event.version})


class Directory:
    """A service's projection of the registry's organisations (its `organisations`
    collection, on the storage engine)."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        *,
        collection: str = "organisations",
        log_collection: str = "organisation_revisions",
    ) -> None:
        # A projection causes no events of its own: no publisher.
        self.store = Revisions(db, collection, log_collection=log_collection)

    @property
    def indexes(self) -> dict[str, list[IndexModel]]:
        return {
            self.store.collection: [
                IndexModel([("county", ASCENDING)]),
                IndexModel([("parent_id", ASCENDING)]),
            ],
            **self.store.indexes,
        }

    async def project(self, event: OrganisationUpdated) -> bool:
        """Keep the registry's latest version; True if this event changed the projection."""
        outcome = await self.store.apply(event.organisation_id, lambda s: projected(s, event))
        return outcome.fresh

    async def get(self, organisation_id: str) -> Organisation | None:
        doc = await self.store.get(organisation_id)
        return Organisation.model_validate(doc) if doc else None

    async def in_county(self, county: str) -> list[Organisation]:
        docs = await self.store.docs.find({"county": county}).to_list()
        return sorted((Organisation.model_validate(d) for d in docs), key=lambda o: o.id)

    async def children(self, parent_id: str) -> list[Organisation]:
        docs = await self.store.docs.find({"parent_id": parent_id}).to_list()
        return sorted((Organisation.model_validate(d) for d in docs), key=lambda o: o.id)

    async def at_division(self, division_code: str) -> list[Organisation]:
        docs = await self.store.docs.find({"division_code": division_code}).to_list()
        return sorted((Organisation.model_validate(d) for d in docs), key=lambda o: o.id)
