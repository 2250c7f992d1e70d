"""The mediator's actions as pure rules: each takes the case as it is, the time and the
action's inputs, and returns the `Change` it makes (or raises the error a person sees).
No database, Kafka or HTTP: `mediation.py` applies them through the storage engine.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

from tiaojie.contracts import topics
from tiaojie.contracts.common import CaseStatus, Category
from tiaojie.contracts.envelope import EventData
from tiaojie.contracts.intake import (
    AgreementPerformed,
    CaseArchived,
    CaseFailed,
    CaseNominated,
    CaseRejected,
    CaseResolved,
    CaseWithdrawn,
    DeadlineChanged,
    FollowUpRecorded,
    SessionRecorded,
)
from tiaojie.intake import casefile, lifecycle
from tiaojie.intake.models import (
    Agreement,
    CaseDoc,
    DocumentRef,
    Extension,
    Failure,
    FollowUp,
    MediationClock,
    Pause,
    Performance,
    Rejection,
    Session,
)
from tiaojie.intake.transitions import Change
from tiaojie.runtime.errors import Conflict, FieldError, Invalid

# 不予受理 reasons (the fixed list), with the wording the applicant is told.
REJECTION_REASONS: dict[str, str] = {
    "outside_scope": "不属于人民调解受理范围",
    "in_litigation": "已经进入诉讼程序",
    "in_arbitration": "已经进入仲裁程序",
    "handled_by_other_body": "已由其他机关或组织受理、处理",
    "party_refuses": "一方当事人明确拒绝调解",
    "statutory_other_channel": "法律法规规定应由专门机关管辖处理",
    "insufficient_information": "申请材料不全且经告知未补正",
    "other": "其他原因",
}
FAILURE_ROUTES: dict[str, str] = {
    "litigation": "引导通过诉讼途径解决",
    "arbitration": "引导申请仲裁",
    "administrative": "引导通过行政途径（行政裁决、复议、信访等）解决",
    "other": "其他途径",
}
AGREEMENT_FORMS: dict[str, str] = {"oral": "口头协议", "written": "书面协议"}
FOLLOW_UP_METHODS: dict[str, str] = {
    "phone": "电话回访",
    "visit": "上门回访",
    "online": "网上回访",
    "other": "其他",
}


def invalid(field: str, code: str, zh: str, en: str) -> Invalid:
    return Invalid([FieldError(field, code, zh, en)])


def not_accepting(case: CaseDoc) -> None:
    if case.accept_pending:
        raise Conflict("案件正在受理中，请稍后再试", "the case is being accepted; try again shortly")


def clock_of(case: CaseDoc) -> MediationClock:
    if case.clock is None:
        raise Conflict("案件尚未受理，调解期限未开始", "the mediation clock has not started")
    return case.clock


# -- 不予受理 --------------------------------------------------------------------------------
def check_rejection(reason_code: str) -> None:
    if reason_code not in REJECTION_REASONS:
        raise invalid(
            "reason_code",
            "unknown_reason",
            "不予受理理由不在规定列表中",
            "the reason is not in the fixed list",
        )


def reject(case: CaseDoc, now: datetime, *, by: str, reason_code: str, reason_text: str) -> Change:
    """不予受理 with a reason from the fixed list (`reason_text` already scrubbed, or empty)."""
    not_accepting(case)
    status = lifecycle.check("reject", case.status)
    text = reason_text or REJECTION_REASONS[reason_code]
    rejection = Rejection(reason_code=reason_code, reason_text=text, at=now, by=by)
    return Change(
        status=status,
        note=REJECTION_REASONS[reason_code],
        sets={"rejection": rejection.model_dump(mode="python")},
        events=[(CaseRejected, {"reason_code": reason_code, "reason_text": text})],
    )


# -- sessions and outcomes ---------------------------------------------------------------------
def record_session(
    case: CaseDoc,
    now: datetime,
    *,
    by: str,
    action_id: str,
    held_at: datetime,
    place: str,
    participants: list[str],
    record: str,
) -> Change:
    """A mediation session; the first one moves the case into mediation."""
    status = lifecycle.check("record_session", case.status)
    if held_at > now + timedelta(hours=1):
        raise invalid(
            "held_at",
            "in_the_future",
            "调解时间不能晚于当前时间",
            "a session cannot be recorded before it is held",
        )
    if case.accepted_at and held_at < case.accepted_at - timedelta(days=1):
        raise invalid(
            "held_at", "before_acceptance", "调解时间不能早于受理时间", "a session cannot precede acceptance"
        )
    number = len(case.sessions) + 1
    session = Session(
        number=number,
        held_at=held_at,
        place=place,
        participants=participants,
        record=record,
        by=by,
        action_id=action_id,
    )
    return Change(
        status=status,
        note=f"第{number}次调解",
        push={"sessions": session.model_dump(mode="python")},
        events=[(SessionRecorded, {"session_number": number, "held_at": held_at})],
    )


def check_agreement(
    *, form: str, text: str, judicial_confirmation: bool, performance_due: date | None, today: date
) -> None:
    """The inputs of an agreement, all errors at once."""
    errors = []
    if form not in AGREEMENT_FORMS:
        errors.append(
            FieldError("form", "unknown_form", "协议形式应为口头或书面", "form must be oral or written")
        )
    if form == "written" and not text.strip():
        errors.append(
            FieldError(
                "text", "required_for_written", "书面协议须填写协议内容", "a written agreement needs its text"
            )
        )
    if judicial_confirmation and form != "written":
        errors.append(
            FieldError(
                "judicial_confirmation",
                "needs_written",
                "申请司法确认须有书面协议",
                "judicial confirmation needs a written agreement",
            )
        )
    if performance_due is not None and performance_due < today:
        errors.append(
            FieldError(
                "performance_due",
                "in_the_past",
                "履行期限不能早于今天",
                "the performance deadline cannot be in the past",
            )
        )
    if errors:
        raise Invalid(errors)


def resolve(
    case: CaseDoc,
    now: datetime,
    *,
    by: str,
    form: str,
    amount: float | None,
    performance_due: date | None,
    summary: str,
    text: str,
    confirmation_due: date | None,
) -> Change:
    """调解成功: an oral or written agreement (`confirmation_due` set when judicial
    confirmation is asked for)."""
    status = lifecycle.check("resolve", case.status)
    agreement = Agreement(
        form=form,
        amount=amount,
        performance_due=performance_due,
        summary=summary,
        text=text,
        judicial_confirmation=confirmation_due is not None,
        judicial_confirmation_due=confirmation_due,
        at=now,
        by=by,
    )
    return Change(
        status=status,
        note=AGREEMENT_FORMS[form],
        sets={"agreement": agreement.model_dump(mode="python")},
        events=[
            (
                CaseResolved,
                {
                    "agreement_form": form,
                    "amount": amount,
                    "performance_due": performance_due,
                    "agreement_summary": summary,
                    "judicial_confirmation_due": confirmation_due,
                },
            )
        ],
    )


def check_failure(route: str) -> None:
    if route not in FAILURE_ROUTES:
        raise invalid(
            "route",
            "unknown_route",
            "引导途径应为诉讼、仲裁、行政或其他",
            "route must be litigation, arbitration, administrative or other",
        )


def fail(case: CaseDoc, now: datetime, *, by: str, route: str, reason: str) -> Change:
    """调解不成, with the route the parties are guided to."""
    status = lifecycle.check("fail", case.status)
    failure = Failure(route=route, reason=reason, at=now, by=by)
    return Change(
        status=status,
        note=FAILURE_ROUTES[route],
        sets={"failure": failure.model_dump(mode="python")},
        events=[(CaseFailed, {"route": route, "reason": reason})],
    )


def check_not_ahead(field: str, day: date, *, today: date, zh: str, en: str) -> None:
    if day > today:
        raise invalid(field, "in_the_future", zh, en)


def record_performance(case: CaseDoc, now: datetime, *, by: str, performed_on: date, note: str) -> Change:
    """Proof that the agreement was performed."""
    status = lifecycle.check("record_performance", case.status)
    if case.agreement is None:
        raise lifecycle.illegal("record_performance", case.status)
    if case.performance is not None:
        raise Conflict("协议履行情况已记录", "performance is already recorded")
    performance = Performance(performed_on=performed_on, note=note, at=now, by=by)
    return Change(
        status=status,
        note="协议已履行",
        sets={"performance": performance.model_dump(mode="python")},
        events=[(AgreementPerformed, {})],
    )


def check_follow_up(method: str) -> None:
    if method not in FOLLOW_UP_METHODS:
        raise invalid(
            "method",
            "unknown_method",
            "回访方式应为电话、上门、网上或其他",
            "method must be phone, visit, online or other",
        )


def follow_up(
    case: CaseDoc,
    now: datetime,
    *,
    by: str,
    visited_on: date,
    method: str,
    satisfied: bool | None,
    record: str,
) -> Change:
    """回访."""
    status = lifecycle.check("follow_up", case.status)
    visit = FollowUp(visited_on=visited_on, method=method, satisfied=satisfied, record=record, at=now, by=by)
    return Change(
        status=status,
        note=FOLLOW_UP_METHODS[method],
        sets={"follow_up": visit.model_dump(mode="python")},
        events=[(FollowUpRecorded, {"satisfied": satisfied})],
    )


def archive(case: CaseDoc, now: datetime) -> Change:
    """归档: only a complete file is closed."""
    status = lifecycle.check("archive", case.status)
    missing = casefile.missing_for_archive(case)
    if missing:
        labels = {p.code: p.label for p in casefile.PARTS}
        raise Conflict(
            "卷宗不完整，缺少：" + "、".join(labels[m] for m in missing),
            "the case file is incomplete: " + ", ".join(missing),
            missing_parts=missing,
        )
    return Change(
        status=status, note="卷宗完整，归档", sets={"archived_at": now}, events=[(CaseArchived, {})]
    )


def withdraw(case: CaseDoc, now: datetime, *, reason: str) -> Change:
    """The applicant withdrew, at any open stage (`reason` already scrubbed)."""
    not_accepting(case)
    status = lifecycle.check("withdraw", case.status)
    return Change(
        status=status,
        note="申请人撤回",
        sets={"withdrawn_at": now, "withdrawal_reason": reason},
        events=[(CaseWithdrawn, {"previous_status": case.status})],
    )


def check_part(part: str) -> None:
    if part not in casefile.PART_CODES:
        raise invalid("part", "unknown_part", "卷宗部分不存在", "no such part of the case file")


def add_document(
    case: CaseDoc,
    now: datetime,
    *,
    by: str,
    action_id: str,
    part: str,
    title: str,
    uri: str,
    media_type: str | None,
    sha256: str | None,
    pages: int | None,
) -> Change:
    """Metadata of a document of the file (the content stays where `uri` points)."""
    status = lifecycle.check("add_document", case.status)
    ref = DocumentRef(
        id=action_id,
        part=part,
        title=title,
        uri=uri,
        media_type=media_type,
        sha256=sha256,
        pages=pages,
        added_at=now,
        by=by,
    )
    return Change(status=status, note=f"添加{part}", push={"documents": ref.model_dump(mode="python")})


def set_category(case: CaseDoc, now: datetime, *, category: Category) -> Change | None:
    """A desk user overrides the category; later events carry the new one."""
    status = lifecycle.check("set_category", case.status)
    if case.category == category and case.category_source == "desk":
        return None
    return Change(
        status=status,
        note=f"类别改为{category}",
        sets={"category": category, "category_source": "desk", "category_confidence": 1.0},
    )


def nominate(
    case: CaseDoc, now: datetime, *, by: str, note: str, content: Callable[[CaseDoc], str]
) -> Change:
    """Offer a closed case to the typical-case library; `content` seals its texts."""
    status = lifecycle.check("nominate", case.status)
    if case.nominated_at is not None:
        raise Conflict("该案件已推荐入库", "the case is already nominated")
    if case.status == CaseStatus.WITHDRAWN:
        outcome = CaseStatus.WITHDRAWN
    else:
        outcome = CaseStatus.RESOLVED if case.agreement is not None else CaseStatus.FAILED

    def nomination(after: CaseDoc) -> EventData:
        return CaseNominated(
            case_id=after.id,
            county=after.county,
            township=after.township,
            category=after.category,
            organisation_id=after.organisation_id,
            case_number=after.case_number,
            outcome=outcome,
            amount=after.agreement.amount if after.agreement else after.amount,
            referral_kind=after.referral_kind,
            received_at=after.received_at,
            closed_at=after.archived_at or after.withdrawn_at,
            nominated_by=by,
            nominated_at=now,
            note=note,
            content_enc=content(after),
        )

    return Change(
        status=status,
        note="推荐入选典型案例库",
        sets={"nominated_at": now, "nominated_by": by},
        others=[(topics.LIBRARY_NOMINATIONS, nomination, CaseNominated.event_type)],
    )


# -- the mediation clock -------------------------------------------------------------------
def pause_clock(case: CaseDoc, now: datetime, *, reason: str) -> Change:
    """Stop the mediation clock (e.g. awaiting an appraisal), with the reason logged."""
    status = lifecycle.check("pause_clock", case.status)
    clock = clock_of(case)
    if clock.paused_at is not None:
        raise Conflict("调解期限已暂停", "the mediation clock is already paused")
    clock = clock.model_copy(
        update={"paused_at": now, "pauses": [*clock.pauses, Pause(paused_at=now, reason=reason)]}
    )
    return Change(
        status=status,
        note=f"暂停：{reason}",
        sets={"clock": clock.model_dump(mode="python")},
        events=[(DeadlineChanged, {"clock": "mediation", "due": None, "change": "paused", "reason": reason})],
    )


def resume_clock(case: CaseDoc, now: datetime) -> Change:
    """Restart a paused clock; the time it stood still is added to the deadline."""
    status = lifecycle.check("resume_clock", case.status)
    clock = clock_of(case)
    if clock.paused_at is None:
        raise Conflict("调解期限未暂停", "the mediation clock is not paused")
    due = clock.due + (now - clock.paused_at)
    pauses = [*clock.pauses[:-1], clock.pauses[-1].model_copy(update={"resumed_at": now})]
    clock = clock.model_copy(update={"paused_at": None, "due": due, "pauses": pauses})
    return Change(
        status=status,
        note="恢复计时",
        sets={"clock": clock.model_dump(mode="python")},
        events=[(DeadlineChanged, {"clock": "mediation", "due": due, "change": "resumed"})],
    )


def check_extension(
    *, days: int, max_days: int, applicant_consent: bool, respondent_consent: bool, consent_record: str
) -> None:
    """The inputs of an extension, all errors at once."""
    errors = []
    if not 1 <= days <= max_days:
        errors.append(
            FieldError(
                "days", "out_of_range", f"延长天数应为1至{max_days}天", f"days must be 1 to {max_days}"
            )
        )
    if not applicant_consent:
        errors.append(
            FieldError(
                "applicant_consent",
                "consent_required",
                "延长调解期限须经申请人同意",
                "the applicant must consent",
            )
        )
    if not respondent_consent:
        errors.append(
            FieldError(
                "respondent_consent",
                "consent_required",
                "延长调解期限须经被申请人同意",
                "the respondent must consent",
            )
        )
    if not consent_record.strip():
        errors.append(
            FieldError(
                "consent_record", "required", "须记录双方同意的情况", "record how both parties consented"
            )
        )
    if errors:
        raise Invalid(errors)


def extend_clock(case: CaseDoc, now: datetime, *, by: str, days: int, consent_record: str) -> Change:
    """Extend the mediation clock once, with both parties' recorded consent."""
    status = lifecycle.check("extend_clock", case.status)
    clock = clock_of(case)
    if clock.extension is not None:
        raise Conflict(
            "调解期限只能延长一次，已延长过", "the mediation clock can be extended once and already was"
        )
    due = clock.due + timedelta(days=days)
    extension = Extension(
        days=days,
        applicant_consent=True,
        respondent_consent=True,
        consent_record=consent_record,
        at=now,
        by=by,
    )
    clock = clock.model_copy(update={"due": due, "extension": extension})
    return Change(
        status=status,
        note=f"经双方同意延长{days}天",
        sets={"clock": clock.model_dump(mode="python")},
        events=[
            (
                DeadlineChanged,
                {"clock": "mediation", "due": due, "change": "extended", "reason": f"双方同意延长{days}天"},
            )
        ],
    )
