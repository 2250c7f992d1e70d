"""Risk level (一般/较大/重大) from explainable signals.

Each signal found is listed on the case with its weight and what triggered it (never a
personal value). Weights add up: 3 or more is 重大 (grave), 1 or more 较大 (serious).
Threats of violence and self-harm talk are grave on their own (民转刑 and life at
stake); a group dispute (≥5 parties, 群体性) is serious and becomes grave with any
further signal; repeat visits, large amounts and vulnerable parties are serious each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from tiaojie.contracts.common import RiskLevel

GRAVE_AT = 3
SERIOUS_AT = 1

# Phrases people use, on the phone or at a desk, when a dispute may turn violent.
VIOLENCE = (
    "砍死",
    "砍人",
    "杀了",
    "杀人",
    "弄死",
    "打死他",
    "打死你",
    "捅死",
    "捅了",
    "同归于尽",
    "跟他拼了",
    "和他拼了",
    "你死我活",
    "报复",
    "放把火",
    "一把火烧了",
    "烧了他",
    "炸了",
    "动刀",
    "拿刀",
    "持刀",
    "带刀",
    "要他命",
    "血债",
    "以命",
    "不让他好过",
    "灭门",
    "泼汽油",
)
SELF_HARM = (
    "自杀",
    "轻生",
    "寻死",
    "跳楼",
    "跳河",
    "喝农药",
    "喝药",
    "服毒",
    "上吊",
    "割腕",
    "不想活",
    "活不下去",
    "死给",
    "一死了之",
    "死在",
    "吊死",
)
# Words that show a group behind the dispute even when few parties are named.
GROUP_WORDS = (
    "集体上访",
    "群体",
    "几十户",
    "上百户",
    "几十个",
    "上百人",
    "全村",
    "聚集",
    "堵路",
    "围堵",
    "联名",
)


@dataclass(frozen=True)
class RiskSignal:
    code: str
    label: str  # what users see
    weight: int
    detail: str = ""  # what triggered it (a phrase category or a count, never personal data)


@dataclass(frozen=True)
class RiskInput:
    description: str
    parties_count: int
    amount: float | None
    vulnerable_parties: int
    birth_dates: list[date]
    prior_visits: int
    today: date


@dataclass(frozen=True)
class RiskPolicy:
    group_size: int = 5
    large_amount: float = 100_000.0
    very_large_amount: float = 1_000_000.0
    repeat_visits: int = 2
    elderly_age: int = 70
    minor_age: int = 18


@dataclass(frozen=True)
class RiskRating:
    level: RiskLevel
    signals: list[RiskSignal]

    @property
    def codes(self) -> list[str]:
        return [s.code for s in self.signals]


def _found(text: str, phrases: tuple[str, ...]) -> list[str]:
    compact = re.sub(r"\s+", "", text)
    return [p for p in phrases if p in compact]


def _age(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def rate(data: RiskInput, policy: RiskPolicy | None = None) -> RiskRating:
    """Every signal present in a submission, and the level they add up to."""
    policy = policy or RiskPolicy()
    signals: list[RiskSignal] = []
    if hits := _found(data.description, VIOLENCE):
        signals.append(RiskSignal("violence_threat", "有暴力威胁言语（民转刑风险）", 3, "、".join(hits[:3])))
    if hits := _found(data.description, SELF_HARM):
        signals.append(RiskSignal("self_harm", "有自伤自杀言语", 3, "、".join(hits[:3])))
    group_words = _found(data.description, GROUP_WORDS)
    if data.parties_count >= policy.group_size or group_words:
        detail = (
            f"{data.parties_count}方当事人"
            if data.parties_count >= policy.group_size
            else "、".join(group_words[:3])
        )
        signals.append(RiskSignal("group", "群体性纠纷", 2, detail))
    if data.prior_visits >= policy.repeat_visits:
        signals.append(RiskSignal("repeat_visit", "同一申请人反复来访", 1, f"此前{data.prior_visits}次"))
    if data.amount is not None and data.amount >= policy.large_amount:
        weight = 2 if data.amount >= policy.very_large_amount else 1
        signals.append(RiskSignal("large_amount", "争议金额较大", weight, f"≥{policy.large_amount:,.0f}元"))
    ages = [_age(b, data.today) for b in data.birth_dates]
    minors = sum(1 for a in ages if a < policy.minor_age)
    elderly = sum(1 for a in ages if a >= policy.elderly_age)
    vulnerable = data.vulnerable_parties + minors + elderly
    if vulnerable:
        parts = []
        if data.vulnerable_parties:
            parts.append(f"{data.vulnerable_parties}名弱势当事人")
        if minors:
            parts.append(f"{minors}名未成年人")
        if elderly:
            parts.append(f"{elderly}名{policy.elderly_age}岁以上老人")
        signals.append(RiskSignal("vulnerable_party", "涉及弱势群体", 1, "、".join(parts)))
    score = sum(s.weight for s in signals)
    level = (
        RiskLevel.GRAVE
        if score >= GRAVE_AT
        else RiskLevel.SERIOUS
        if score >= SERIOUS_AT
        else RiskLevel.ORDINARY
    )
    return RiskRating(level=level, signals=signals)
