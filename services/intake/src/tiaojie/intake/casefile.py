"""The case file (一案一卷) and its 13-part index: what is present, what is missing.

Parts the system itself produces (the registration form, the mediation record from the
sessions, the agreement, the follow-up record, the back cover) are present as soon as
their facts are recorded; the others are documents (metadata with a path or URL) a
desk or mediator adds. Which parts are required depends on how far the case went; a
case is archived only when nothing required is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tiaojie.contracts.common import CaseStatus
from tiaojie.intake.models import CaseDoc

S = CaseStatus


@dataclass(frozen=True)
class Part:
    code: str
    label: str
    label_en: str


PARTS: tuple[Part, ...] = (
    Part("application_form", "调解申请书/受理登记表", "application and registration form"),
    Part("notice_of_rights", "权利义务告知书", "notice of rights and obligations"),
    Part("identity_documents", "当事人身份证明材料", "identity documents"),
    Part("power_of_attorney", "授权委托书", "power of attorney"),
    Part("investigation_record", "调查记录", "investigation record"),
    Part("evidence", "证据材料", "evidence"),
    Part("mediation_record", "调解笔录", "mediation record"),
    Part("agreement", "人民调解协议书", "mediation agreement"),
    Part("proof_of_performance", "协议履行凭证", "proof of performance"),
    Part("follow_up_record", "回访记录", "follow-up record"),
    Part("judicial_confirmation", "司法确认材料", "judicial-confirmation papers"),
    Part("explanatory_note", "卷内备考表/说明", "explanatory note"),
    Part("back_cover", "封底", "back cover"),
)
PART_CODES = frozenset(p.code for p in PARTS)

_ACCEPTED_ON = frozenset(
    {S.ACCEPTED, S.ASSIGNED, S.IN_MEDIATION, S.TRANSFERRED, S.RESOLVED, S.FAILED, S.FOLLOWED_UP, S.ARCHIVED}
)
_CONCLUDED = frozenset({S.RESOLVED, S.FAILED, S.FOLLOWED_UP, S.ARCHIVED})


@dataclass
class PartStatus:
    code: str
    order: int
    label: str
    label_en: str
    required: bool
    present: bool
    items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def missing(self) -> bool:
        return self.required and not self.present


def required_parts(case: CaseDoc, *, for_archive: bool = False) -> set[str]:
    """Parts a case at its stage must have (for_archive: what archiving requires)."""
    status = S.FOLLOWED_UP if for_archive else case.status
    required = {"application_form"}
    if status in _ACCEPTED_ON:
        required |= {"notice_of_rights", "identity_documents"}
    if status in _CONCLUDED:
        required.add("mediation_record")
    if status in _CONCLUDED and case.agreement is not None and case.agreement.form == "written":
        required.add("agreement")
    if status in {S.FOLLOWED_UP, S.ARCHIVED}:
        required.add("follow_up_record")
    if status == S.ARCHIVED:
        required.add("back_cover")
    return required


def _generated(case: CaseDoc) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {
        "application_form": [
            {"source": "system", "title": "受理登记表（系统生成）", "at": case.received_at.isoformat()}
        ]
    }
    if case.sessions:
        out["mediation_record"] = [
            {"source": "system", "title": f"第{s.number}次调解笔录", "at": s.held_at.isoformat()}
            for s in case.sessions
        ]
    if case.agreement is not None:
        title = "人民调解协议书" if case.agreement.form == "written" else "口头调解协议记录"
        out["agreement"] = [{"source": "system", "title": title, "at": case.agreement.at.isoformat()}]
    if case.performance is not None:
        out["proof_of_performance"] = [
            {"source": "system", "title": "协议履行情况记录", "at": case.performance.at.isoformat()}
        ]
    if case.follow_up is not None:
        out["follow_up_record"] = [
            {"source": "system", "title": "回访记录", "at": case.follow_up.at.isoformat()}
        ]
    if case.archived_at is not None:
        out["back_cover"] = [
            {"source": "system", "title": "卷宗封底（归档时生成）", "at": case.archived_at.isoformat()}
        ]
    return out


def file_index(case: CaseDoc) -> list[PartStatus]:
    """The 13 parts in order, each with its items and whether it is required and present."""
    required = required_parts(case)
    generated = _generated(case)
    index = []
    for order, part in enumerate(PARTS, start=1):
        items = list(generated.get(part.code, []))
        items += [
            {"source": "document", **d.model_dump(mode="json", exclude={"part"})}
            for d in case.documents
            if d.part == part.code
        ]
        index.append(
            PartStatus(
                code=part.code,
                order=order,
                label=part.label,
                label_en=part.label_en,
                required=part.code in required,
                present=bool(items),
                items=items,
            )
        )
    return index


def missing_for_archive(case: CaseDoc) -> list[str]:
    """Required parts (back cover aside: archiving makes it) that the file lacks."""
    present = {p.code for p in file_index(case) if p.present}
    return [
        p.code for p in PARTS if p.code in required_parts(case, for_archive=True) - {"back_cover"} - present
    ]
