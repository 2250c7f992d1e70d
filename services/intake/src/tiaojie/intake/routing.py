"""Which organisation a dispute goes to, from intake's projection of the registry.

The rule, in order (DESIGN.md §2 and issue 3):
1. 重大 (grave) and cross-county disputes go to the county one-stop centre;
2. an active industry/professional committee of the county that covers the category wins;
3. otherwise the township committee of the dispute's location;
4. otherwise the county one-stop centre;
5. otherwise nobody: the case stays unrouted and a desk routes it at acceptance.
Ties are broken by organisation id so every replica routes alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tiaojie.contracts.common import Category, OrganisationKind, RiskLevel
from tiaojie.intake.models import OrganisationView


@dataclass(frozen=True)
class Route:
    organisation: OrganisationView | None
    reason: str  # code
    reason_zh: str


def _first(orgs: Sequence[OrganisationView]) -> OrganisationView | None:
    return min(orgs, key=lambda o: o.id) if orgs else None


def route(
    *,
    county: str,
    township: str | None,
    category: Category,
    risk_level: RiskLevel,
    cross_county: bool,
    in_county: Sequence[OrganisationView],
    at_township: Sequence[OrganisationView],
) -> Route:
    """Apply the routing rule to the active organisations of the county and township."""
    active = [o for o in in_county if o.active and o.county == county]
    centre = _first([o for o in active if o.kind == OrganisationKind.CENTRE and o.level == "county"])
    if (risk_level == RiskLevel.GRAVE or cross_county) and centre is not None:
        if risk_level == RiskLevel.GRAVE:
            return Route(centre, "grave_to_centre", "重大风险案件由县级一站式调解中心受理")
        return Route(centre, "cross_county_to_centre", "跨县区纠纷由县级一站式调解中心受理")
    industry = _first(
        [o for o in active if o.kind == OrganisationKind.INDUSTRY_COMMITTEE and category in o.categories]
    )
    if industry is not None and category != Category.OTHER:
        return Route(industry, "industry_committee", "本县区有覆盖该类纠纷的行业性专业性调委会")
    if township:
        local = _first(
            [
                o
                for o in at_township
                if o.active
                and o.kind == OrganisationKind.TOWNSHIP_COMMITTEE
                and o.division_code == township[:9]
            ]
        )
        if local is not None:
            return Route(local, "township_committee", "纠纷发生地乡镇（街道）人民调解委员会")
    if centre is not None:
        return Route(centre, "county_centre", "无对口调解组织，由县级一站式调解中心受理")
    return Route(None, "unrouted", "未找到可受理的调解组织，请窗口人工分流")
