"""First tags of a nominated case, proposed for the bureau to confirm or change: the
techniques its record mentions, the amount band, a working title, and the texts of the
case file arranged in the usual layout of a typical case."""

from __future__ import annotations

from tiaojie.contracts.common import CATEGORY_LABELS, CaseStatus, Category
from tiaojie.contracts.intake import NominatedContent
from tiaojie.contracts.library import AmountBand, Technique

# Words in a mediation record that show a technique was used.
TECHNIQUE_CUES: dict[Technique, tuple[str, ...]] = {
    Technique.BACK_TO_BACK: ("背对背", "分别做工作", "分头做工作", "单独沟通", "分别谈话"),
    Technique.FACE_TO_FACE: ("面对面", "当面协商", "三方会谈"),
    Technique.JOINT: ("联合调解", "联调", "会同", "派出所", "交警", "法庭", "人社", "市场监管", "住建"),
    Technique.EXPERT: ("专家", "鉴定", "医学会", "评估", "工程师", "技术人员"),
    Technique.LAWYER: ("律师",),
    Technique.JUDICIAL_CONFIRMATION: ("司法确认",),
    Technique.ON_SITE: ("现场", "实地", "丈量", "勘察", "入户"),
    Technique.COOLING_OFF: ("冷处理", "冷静期", "缓一缓", "冷静几天"),
    Technique.RELATIVES: ("亲友", "乡贤", "族中长辈", "老党员", "村里威望", "德高望重"),
    Technique.LAW_EXPLAINING: ("释法", "法律规定", "讲解法律", "民法典", "以案说法", "法律后果"),
    Technique.EMOTIONAL: ("情感", "疏导", "亲情", "心理", "安抚", "换位思考"),
    Technique.INSTALMENTS: ("分期", "分两次", "分三次", "按月支付"),
}


def detect_techniques(text: str) -> list[Technique]:
    """Techniques whose cue words appear in the text, in the vocabulary's order."""
    return [t for t, cues in TECHNIQUE_CUES.items() if any(cue in text for cue in cues)]


def amount_band(amount: float | None) -> AmountBand:
    if amount is None or amount <= 0:
        return AmountBand.NONE
    if amount < 10_000:
        return AmountBand.UNDER_10K
    if amount < 50_000:
        return AmountBand.FROM_10K
    if amount < 100_000:
        return AmountBand.FROM_50K
    if amount < 500_000:
        return AmountBand.FROM_100K
    return AmountBand.OVER_500K


def working_title(category: Category, outcome: CaseStatus) -> str:
    """A plain title the bureau is expected to rewrite (…纠纷调解案)."""
    suffix = "调解成功案" if outcome == CaseStatus.RESOLVED else "调解案"
    return f"{CATEGORY_LABELS[category]}纠纷{suffix}"


def case_texts(content: NominatedContent) -> dict[str, str]:
    """The case file's texts in the layout of a typical case (still with personal data:
    the anonymiser runs over exactly these fields)."""
    sessions = []
    for number, session in enumerate(sorted(content.sessions, key=lambda s: s.held_at), start=1):
        when = f"{session.held_at.year}年{session.held_at.month}月"
        head = f"第{number}次调解（{when}"
        head += f"，{session.place}）" if session.place else "）"
        line = head + (f"：{session.participants}参加。" if session.participants else "：")
        sessions.append(line + session.record.strip())
    result = content.agreement_text.strip() or content.failure_reason.strip()
    return {
        "summary": content.description.strip(),
        "process": "\n".join(sessions),
        "result": result,
        "follow_up": content.follow_up_record.strip(),
    }
