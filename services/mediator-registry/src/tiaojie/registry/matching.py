"""Explainable matching of a case to the mediators of one organisation (pure rules).

Hard rules exclude (eligibility, conflict of interest, grade for the risk level, capacity);
the rest are ranked by a weighted score whose parts are published as the breakdown:
specialty (the case's category among the mediator's specialties), grade_fit (seniors are
kept for the cases that need them), headroom (open cases against capacity) and fairness
(assignments received in the fairness window beyond the least-assigned candidate's).
Equal scores are broken by a hash of case and mediator: the same state gives the same
choice, and no mediator is favoured by the spelling of their id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from tiaojie.contracts.common import CATEGORY_LABELS, Category
from tiaojie.contracts.registry import Candidate, Exclusion
from tiaojie.registry.eligibility import REASONS, conflicted, ineligibility
from tiaojie.registry.models import GRADE_LABELS, MediatorDoc

UNGRADED = 5  # ranks below 四级 (4)
FAIRNESS_SCALE = 3.0


@dataclass(frozen=True)
class CaseNeeds:
    """What a case asks of its mediator."""

    case_id: str
    category: Category
    risk_level: str
    party_keys: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Policy:
    """The configurable part of the rules (from RegistrySettings)."""

    required_grade: Mapping[str, int]
    weights: Mapping[str, float]
    default_capacity: int
    part_time_capacity: int

    def capacity(self, mediator: MediatorDoc) -> int:
        if mediator.capacity is not None:
            return mediator.capacity
        return self.default_capacity if mediator.full_time else self.part_time_capacity

    def grade_needed(self, risk_level: str) -> int | None:
        return self.required_grade.get(str(risk_level))


@dataclass(frozen=True)
class Counts:
    """Live figures of a mediator: open cases now and recent assignments."""

    load: int
    recent: int


@dataclass
class Ranking:
    ranked: list[Candidate] = field(default_factory=list)
    excluded: list[Exclusion] = field(default_factory=list)


def grade_number(mediator: MediatorDoc) -> int:
    return int(mediator.grade) if mediator.grade is not None else UNGRADED


def prefilter(mediator: MediatorDoc, needs: CaseNeeds, *, today: date, policy: Policy) -> list[str]:
    """Exclusion reasons that need no live figures (eligibility, conflict, grade)."""
    reasons = ineligibility(mediator, today=today)
    if conflicted(mediator, set(needs.party_keys)):
        reasons.append("conflict_of_interest")
    needed = policy.grade_needed(needs.risk_level)
    if needed is not None and grade_number(mediator) > needed:
        reasons.append("grade_below_required")
    return reasons


def score_parts(
    mediator: MediatorDoc, needs: CaseNeeds, counts: Counts, *, min_recent: int, policy: Policy
) -> dict[str, float]:
    """The score components of one candidate, each in [0, 1]."""
    if needs.category in mediator.specialties:
        specialty = 1.0
    elif not mediator.specialties or needs.category == Category.OTHER:
        specialty = 0.5  # a generalist
    else:
        specialty = 0.0
    needed = policy.grade_needed(needs.risk_level) or UNGRADED
    grade_fit = max(0.0, 1.0 - 0.25 * (needed - grade_number(mediator)))
    capacity = policy.capacity(mediator)
    headroom = max(0.0, 1.0 - counts.load / capacity) if capacity else 0.0
    # One assignment more than the least-assigned candidate costs a quarter, three cost
    # half: strong enough to rotate equals, weaker than a specialty match.
    fairness = 1.0 / (1.0 + (counts.recent - min_recent) / FAIRNESS_SCALE)
    return {
        "specialty": specialty,
        "grade_fit": round(grade_fit, 4),
        "headroom": round(headroom, 4),
        "fairness": round(fairness, 4),
    }


def tie_break(case_id: str, mediator_id: str) -> str:
    return hashlib.sha256(f"{case_id}\x00{mediator_id}".encode()).hexdigest()


def rank(
    organisation_id: str,
    mediators: Sequence[MediatorDoc],
    counts: Mapping[str, Counts],
    needs: CaseNeeds,
    *,
    today: date,
    policy: Policy,
) -> Ranking:
    """Rank the mediators of one organisation for a case; `counts` holds the live figures
    of every mediator that passed `prefilter`."""
    result = Ranking()
    admissible: list[MediatorDoc] = []
    for mediator in mediators:
        reasons = prefilter(mediator, needs, today=today, policy=policy)
        if not reasons and counts[mediator.id].load >= policy.capacity(mediator):
            reasons.append("at_capacity")
        if reasons:
            result.excluded.append(
                Exclusion(mediator_id=mediator.id, organisation_id=organisation_id, reasons=reasons)
            )
        else:
            admissible.append(mediator)
    if not admissible:
        return result
    min_recent = min(counts[m.id].recent for m in admissible)
    scored = []
    for mediator in admissible:
        c = counts[mediator.id]
        parts = score_parts(mediator, needs, c, min_recent=min_recent, policy=policy)
        score = round(sum(policy.weights.get(k, 0.0) * v for k, v in parts.items()), 4)
        breakdown = {
            **parts,
            "load": float(c.load),
            "capacity": float(policy.capacity(mediator)),
            "recent_assignments": float(c.recent),
        }
        scored.append(
            (
                -score,
                tie_break(needs.case_id, mediator.id),
                Candidate(mediator_id=mediator.id, score=score, breakdown=breakdown),
            )
        )
    scored.sort(key=lambda t: (t[0], t[1]))
    result.ranked = [c for _, _, c in scored]
    return result


def explain(
    mediator: MediatorDoc,
    chosen: Candidate,
    needs: CaseNeeds,
    *,
    organisation_name: str,
    escalated_from_name: str | None,
    window_days: int,
) -> str:
    """Why this mediator, in the words a centre user reads (Chinese)."""
    b = chosen.breakdown
    category = CATEGORY_LABELS.get(needs.category, str(needs.category))
    if b.get("specialty") == 1.0:
        specialty = f"擅长{category}纠纷"
    elif b.get("specialty") == 0.5:
        specialty = "综合类调解员"
    else:
        specialty = f"非{category}专长"
    grade = GRADE_LABELS.get(mediator.grade, "未定级") if mediator.grade else "未定级"
    parts = [
        f"由{organisation_name}调解员承办",
        specialty,
        f"等级{grade}，满足风险等级要求",
        f"当前在办{int(b.get('load', 0))}件（上限{int(b.get('capacity', 0))}件）",
        f"近{window_days}天分配{int(b.get('recent_assignments', 0))}件",
        f"综合得分{chosen.score:.3f}",
    ]
    text = "；".join(parts) + "。"
    if escalated_from_name:
        text = f"{escalated_from_name}无符合条件的调解员，已逐级上报。" + text
    return text


def summarise_exclusions(excluded: Sequence[Exclusion]) -> str:
    """Counts of exclusion reasons, in Chinese, for an escalation or a failure."""
    tally: dict[str, int] = {}
    for item in excluded:
        for reason in item.reasons:
            tally[reason] = tally.get(reason, 0) + 1
    if not tally:
        return "无登记在册的调解员"
    return "，".join(f"{REASONS[r][0]}（{n}人）" for r, n in sorted(tally.items()))
