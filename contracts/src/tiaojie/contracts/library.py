"""Events produced by the case-library service (人民调解案例库), on topic library.entries.v1.

Every event is keyed by the entry id and carries the entry's version, so a projection
applies it idempotently (an event of an older or equal version changes nothing). Entries
hold only anonymised text: names became 张某/李某甲, numbers and exact addresses were
removed before anything was stored, and publication was refused while any pattern of
personal data remained. EntryPublished carries the whole published case, so the search
index of any replica (or of another deployment) can be rebuilt from this topic alone.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from tiaojie.contracts.common import CaseStatus, Category
from tiaojie.contracts.envelope import EventData


class Technique(StrEnum):
    """Mediation techniques a typical case is tagged with (调解方法)."""

    BACK_TO_BACK = "back_to_back"  # 背对背
    FACE_TO_FACE = "face_to_face"  # 面对面
    JOINT = "joint"  # 联合调解 (with police, court, departments)
    EXPERT = "expert"  # 专家参与 (doctors, engineers, assessors)
    LAWYER = "lawyer"  # 律师参与
    JUDICIAL_CONFIRMATION = "judicial_confirmation"  # 司法确认
    ON_SITE = "on_site"  # 现场调解 / 实地勘察
    COOLING_OFF = "cooling_off"  # 冷处理
    RELATIVES = "relatives"  # 亲友参与 / 乡贤参与
    LAW_EXPLAINING = "law_explaining"  # 释法说理
    EMOTIONAL = "emotional"  # 情感疏导 / 心理疏导
    INSTALMENTS = "instalments"  # 分期履行


TECHNIQUE_LABELS: dict[Technique, str] = {
    Technique.BACK_TO_BACK: "背对背",
    Technique.FACE_TO_FACE: "面对面",
    Technique.JOINT: "联合调解",
    Technique.EXPERT: "专家参与",
    Technique.LAWYER: "律师参与",
    Technique.JUDICIAL_CONFIRMATION: "司法确认",
    Technique.ON_SITE: "现场调解",
    Technique.COOLING_OFF: "冷处理",
    Technique.RELATIVES: "亲友乡贤参与",
    Technique.LAW_EXPLAINING: "释法说理",
    Technique.EMOTIONAL: "情感疏导",
    Technique.INSTALMENTS: "分期履行",
}


class AmountBand(StrEnum):
    """Disputed amount in bands (涉及金额), so no exact sum identifies a case."""

    NONE = "none"
    UNDER_10K = "under_10k"
    FROM_10K = "10k_50k"
    FROM_50K = "50k_100k"
    FROM_100K = "100k_500k"
    OVER_500K = "over_500k"


AMOUNT_BAND_LABELS: dict[AmountBand, str] = {
    AmountBand.NONE: "不涉及金额",
    AmountBand.UNDER_10K: "1万元以下",
    AmountBand.FROM_10K: "1万至5万元",
    AmountBand.FROM_50K: "5万至10万元",
    AmountBand.FROM_100K: "10万至50万元",
    AmountBand.OVER_500K: "50万元以上",
}


class EntryStatus(StrEnum):
    """Curation states of a library entry."""

    NOMINATED = "nominated"  # 待审核
    PUBLISHED = "published"  # 已发布
    DECLINED = "declined"  # 未采用
    WITHDRAWN = "withdrawn"  # 已撤下


ENTRY_STATUS_LABELS: dict[EntryStatus, str] = {
    EntryStatus.NOMINATED: "待审核",
    EntryStatus.PUBLISHED: "已发布",
    EntryStatus.DECLINED: "未采用",
    EntryStatus.WITHDRAWN: "已撤下",
}


class EntryEvent(EventData):
    """Fields every library event carries."""

    entry_id: str
    version: int
    county: str
    category: Category
    status: EntryStatus
    at: datetime
    by: str  # user id or "system:library"; never a personal name


class EntryNominated(EntryEvent):
    """An archived case was nominated and stored anonymised, waiting for the bureau."""

    event_type = "tiaojie.library.EntryNominated"

    case_id: str
    organisation_id: str | None = None


class EntryPublished(EntryEvent):
    """The bureau published (or republished after an edit) a typical case: the whole
    anonymised case, enough to index and display it without asking the library."""

    event_type = "tiaojie.library.EntryPublished"

    title: str
    summary: str  # 基本案情
    process: str  # 调解过程 (the mediation record, anonymised)
    result: str  # 调解结果
    commentary: str = ""  # 评析
    techniques: list[Technique] = Field(default_factory=list)
    outcome: CaseStatus
    amount_band: AmountBand = AmountBand.NONE
    year: int
    township: str | None = None
    published_at: datetime


class EntryDeclined(EntryEvent):
    """The bureau declined a nomination (未采用), with its reason."""

    event_type = "tiaojie.library.EntryDeclined"

    reason: str = ""


class EntryWithdrawn(EntryEvent):
    """A published case was taken out of the library (撤下): drop it from every index."""

    event_type = "tiaojie.library.EntryWithdrawn"

    reason: str = ""


__all__ = [
    "AMOUNT_BAND_LABELS",
    "ENTRY_STATUS_LABELS",
    "TECHNIQUE_LABELS",
    "AmountBand",
    "EntryDeclined",
    "EntryEvent",
    "EntryNominated",
    "EntryPublished",
    "EntryStatus",
    "EntryWithdrawn",
    "Technique",
]
