"""What intake's HTTP API takes and gives: request bodies and the views of a case.

Views are complete and self-explanatory for the console: every code users see comes
with its Chinese label. Personal data is masked unless the caller's role needs it and
asked for it (`reveal`), and then the read is audited.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tiaojie.contracts.common import (
    CASE_STATUS_LABELS,
    CATEGORY_LABELS,
    CHANNEL_LABELS,
    RISK_LABELS,
    CaseStatus,
    Category,
    Channel,
    RiskLevel,
)
from tiaojie.intake.casefile import PartStatus
from tiaojie.intake.models import CaseDoc, StoredParty, SubmissionReceipt
from tiaojie.runtime.directory import Organisation
from tiaojie.runtime.divisions import Divisions
from tiaojie.runtime.pii import Protector, mask_id_number, mask_name, mask_phone

ROLE_LABELS = {"applicant": "申请人", "respondent": "被申请人"}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# -- requests ------------------------------------------------------------------------------
class AcceptIn(_Body):
    organisation_id: str | None = Field(
        default=None, max_length=100, description="only for a case routing found no organisation for"
    )


class RejectIn(_Body):
    reason_code: str = Field(max_length=50, description="one of GET /api/v1/reference rejection_reasons")
    reason_text: str = Field(default="", max_length=1000)


class SessionIn(_Body):
    held_at: datetime
    place: str = Field(min_length=1, max_length=200)
    participants: list[str] = Field(default_factory=list, max_length=50)
    record: str = Field(default="", max_length=20000, description="调解笔录 (kept in the file only)")


class ResolveIn(_Body):
    form: str = Field(pattern=r"^(oral|written)$", description="oral | written")
    amount: float | None = Field(default=None, ge=0, le=1e12)
    performance_due: date | None = None
    summary: str = Field(
        default="", max_length=500, description="published to agencies: use 申请人/被申请人, no names"
    )
    text: str = Field(default="", max_length=20000, description="the agreement text (kept in the file only)")
    judicial_confirmation: bool = Field(default=False, description="the parties will apply for 司法确认")


class FailIn(_Body):
    route: str = Field(max_length=30, description="litigation | arbitration | administrative | other")
    reason: str = Field(default="", max_length=1000)


class PerformanceIn(_Body):
    performed_on: date
    note: str = Field(default="", max_length=2000)


class FollowUpIn(_Body):
    visited_on: date
    method: str = Field(max_length=20, description="phone | visit | online | other")
    satisfied: bool | None = None
    record: str = Field(default="", max_length=5000)


class WithdrawIn(_Body):
    reason: str = Field(default="", max_length=1000)


class PauseIn(_Body):
    reason: str = Field(min_length=1, max_length=500)


class ExtendIn(_Body):
    days: int = Field(ge=1, le=365)
    applicant_consent: bool
    respondent_consent: bool
    consent_record: str = Field(min_length=1, max_length=2000)


class NominationIn(_Body):
    note: str = Field(
        default="", max_length=2000, description="why the case is typical (anonymised by the library)"
    )


class NominationOut(BaseModel):
    case_id: str
    nominated: bool
    nominated_at: datetime
    message_zh: str


class CategoryIn(_Body):
    category: Category


class DocumentIn(_Body):
    part: str = Field(max_length=40, description="a part code of the 13-part file index")
    title: str = Field(min_length=1, max_length=200)
    uri: str = Field(
        min_length=1, max_length=1000, pattern=r"^(https?://|/)[^\s]*$", description="path or URL"
    )
    media_type: str | None = Field(default=None, max_length=100)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    pages: int | None = Field(default=None, ge=1, le=10000)


# -- views ----------------------------------------------------------------------------------
class OrganisationRef(BaseModel):
    id: str
    name: str | None = None
    short_name: str | None = None


class PartyOut(BaseModel):
    role: str
    role_label: str
    kind: str
    name: str
    id_number: str | None = None
    phone: str | None = None
    address: str | None = None
    vulnerable: bool
    masked: bool


class AssignmentOut(BaseModel):
    mediator_id: str
    mediator_name: str
    organisation_id: str
    assigned_at: datetime
    reason: str = ""
    escalated_from: str | None = None
    manual: bool = False


class DeadlineOut(BaseModel):
    kind: str  # acceptance | mediation | performance | judicial_confirmation
    label: str
    due: datetime | date
    paused: bool = False


class RiskSignalOut(BaseModel):
    code: str
    label: str
    weight: int
    detail: str = ""


class CaseOut(BaseModel):
    """A case as staff see it; personal data masked unless revealed."""

    id: str
    tracking_code: str
    case_number: str | None
    status: CaseStatus
    status_label: str
    channel: Channel
    channel_label: str
    county: str
    county_name: str | None
    township: str | None
    township_name: str | None
    category: Category
    category_label: str
    category_confidence: float
    category_source: str
    category_evidence: list[str]
    category_suggested: Category | None
    risk_level: RiskLevel
    risk_label: str
    risk_signals: list[str]
    risk_details: list[RiskSignalOut]
    organisation_id: str | None
    organisation: OrganisationRef | None
    routing_reason: str
    assignment: AssignmentOut | None
    assignment_failure: dict[str, Any] | None
    description: str
    amount: float | None
    occurred_on: date | None
    parties: list[PartyOut]
    parties_count: int
    received_at: datetime
    acceptance_due: datetime | None
    accepted_at: datetime | None
    mediation_due: datetime | None
    clock: dict[str, Any] | None
    next_deadline: DeadlineOut | None
    rejection: dict[str, Any] | None
    sessions: list[dict[str, Any]]
    agreement: dict[str, Any] | None
    failure: dict[str, Any] | None
    performance: dict[str, Any] | None
    follow_up: dict[str, Any] | None
    archived_at: datetime | None
    withdrawn_at: datetime | None
    transfers: list[dict[str, Any]]
    referral_id: str | None
    linked_submissions: int
    duplicate_links: list[dict[str, Any]] = Field(
        default_factory=list,
        description="repeats linked to this case; verified=false: from a channel without login, "
        "not checked with the applicant and counted as no visit",
    )
    history: list[dict[str, Any]]
    version: int
    duplicate: bool = Field(default=False, description="true when this answer replays an earlier submission")
    linked: bool = Field(
        default=False, description="true when the submission repeated this open case and was linked to it"
    )
    message_zh: str | None = None


class CaseSummary(BaseModel):
    id: str
    tracking_code: str
    case_number: str | None
    status: CaseStatus
    status_label: str
    category: Category
    category_label: str
    risk_level: RiskLevel
    risk_label: str
    county: str
    organisation_id: str | None
    mediator_id: str | None
    received_at: datetime
    next_deadline: DeadlineOut | None


class ReceiptOut(BaseModel):
    """What a citizen gets back: the tracking code and where the case stands."""

    tracking_code: str
    status: CaseStatus
    status_label: str
    organisation_name: str | None
    next_deadline: DeadlineOut | None
    linked: bool = Field(
        default=False,
        description="always false for citizens: whether another case exists is nobody's business",
    )
    duplicate: bool = False
    message_zh: str


class AuditEntryOut(BaseModel):
    case_id: str
    county: str | None = None  # entries from before the county was recorded have none
    subject: str = Field(description="the account that acted")
    role: str
    action: str = Field(description="read | reveal | file | document")
    action_label: str
    purpose: str = ""
    at: datetime


class AuditPageOut(BaseModel):
    entries: list[AuditEntryOut]
    next_cursor: str | None = Field(description="pass as cursor for the next page; null on the last")


class TrackOut(BaseModel):
    """The citizen's tracking view: nothing personal."""

    tracking_code: str
    case_number: str | None
    status: CaseStatus
    status_label: str
    category_label: str
    organisation_name: str | None
    received_on: date
    next_deadline: DeadlineOut | None
    milestones: list[dict[str, str]]


class FilePartOut(BaseModel):
    code: str
    order: int
    label: str
    label_en: str
    required: bool
    present: bool
    missing: bool
    items: list[dict[str, Any]]


class FileIndexOut(BaseModel):
    case_id: str
    case_number: str | None
    status: CaseStatus
    status_label: str
    complete: bool
    missing: list[str]
    missing_labels: list[str]
    parts: list[FilePartOut]


# -- builders -------------------------------------------------------------------------------
def next_deadline(case: CaseDoc) -> DeadlineOut | None:
    """The next statutory date the case is held to, for staff and citizens alike."""
    if case.status == CaseStatus.RECEIVED and case.acceptance_due:
        return DeadlineOut(kind="acceptance", label="受理期限", due=case.acceptance_due)
    if (
        case.status
        in (
            CaseStatus.ACCEPTED,
            CaseStatus.ASSIGNED,
            CaseStatus.IN_MEDIATION,
            CaseStatus.TRANSFERRED,
        )
        and case.clock
    ):
        return DeadlineOut(
            kind="mediation",
            label="调解期限",
            due=case.clock.due,
            paused=case.clock.paused_at is not None,
        )
    if case.status in (CaseStatus.RESOLVED, CaseStatus.FOLLOWED_UP) and case.agreement:
        if case.agreement.performance_due and case.performance is None:
            return DeadlineOut(kind="performance", label="协议履行期限", due=case.agreement.performance_due)
        if case.agreement.judicial_confirmation_due:
            return DeadlineOut(
                kind="judicial_confirmation",
                label="司法确认申请期限",
                due=case.agreement.judicial_confirmation_due,
            )
    return None


def party_out(party: StoredParty, protector: Protector, *, reveal: bool) -> PartyOut:
    name = protector.decrypt(party.name_enc)
    id_number = protector.decrypt(party.id_number_enc) if party.id_number_enc else None
    phone = protector.decrypt(party.phone_enc) if party.phone_enc else None
    address = protector.decrypt(party.address_enc) if party.address_enc else None
    if not reveal:
        name = name if party.kind == "organisation" else mask_name(name)
        id_number = mask_id_number(id_number) if id_number else None
        phone = mask_phone(phone) if phone else None
        address = None
    return PartyOut(
        role=party.role,
        role_label=ROLE_LABELS.get(party.role, party.role),
        kind=party.kind,
        name=name,
        id_number=id_number,
        phone=phone,
        address=address,
        vulnerable=party.vulnerable,
        masked=not reveal,
    )


def _dump(model: BaseModel | None) -> dict[str, Any] | None:
    return model.model_dump(mode="json") if model is not None else None


def case_out(
    case: CaseDoc,
    *,
    protector: Protector,
    divisions: Divisions,
    organisation: Organisation | None,
    reveal: bool = False,
    duplicate: bool = False,
    linked: bool = False,
) -> CaseOut:
    agreement = _dump(case.agreement)
    if agreement is not None:
        agreement["form_label"] = (
            "书面协议" if case.agreement and case.agreement.form == "written" else "口头协议"
        )
    return CaseOut(
        id=case.id,
        tracking_code=case.tracking_code,
        case_number=case.case_number,
        status=case.status,
        status_label=CASE_STATUS_LABELS[case.status],
        channel=case.channel,
        channel_label=CHANNEL_LABELS[case.channel],
        county=case.county,
        county_name=divisions.name(case.county),
        township=case.township,
        township_name=divisions.name(case.township[:9]) if case.township else None,
        category=case.category,
        category_label=CATEGORY_LABELS[case.category],
        category_confidence=case.category_confidence,
        category_source=case.category_source,
        category_evidence=case.category_evidence,
        category_suggested=case.category_suggested,
        risk_level=case.risk_level,
        risk_label=RISK_LABELS[case.risk_level],
        risk_signals=case.risk_signals,
        risk_details=[RiskSignalOut(**s.model_dump()) for s in case.risk_details],
        organisation_id=case.organisation_id,
        organisation=OrganisationRef(
            id=organisation.id, name=organisation.name, short_name=organisation.short_name
        )
        if organisation
        else (OrganisationRef(id=case.organisation_id) if case.organisation_id else None),
        routing_reason=case.routing_reason,
        assignment=AssignmentOut(**case.assignment.model_dump()) if case.assignment else None,
        assignment_failure=_dump(case.assignment_failure),
        description=case.description,
        amount=case.amount,
        occurred_on=case.occurred_on,
        parties=[party_out(p, protector, reveal=reveal) for p in case.parties],
        parties_count=len(case.parties),
        received_at=case.received_at,
        acceptance_due=case.acceptance_due,
        accepted_at=case.accepted_at,
        mediation_due=case.mediation_due,
        clock=_dump(case.clock),
        next_deadline=next_deadline(case),
        rejection=_dump(case.rejection),
        sessions=[s.model_dump(mode="json", exclude={"action_id"}) for s in case.sessions],
        agreement=agreement,
        failure=_dump(case.failure),
        performance=_dump(case.performance),
        follow_up=_dump(case.follow_up),
        archived_at=case.archived_at,
        withdrawn_at=case.withdrawn_at,
        transfers=[t.model_dump(mode="json") for t in case.transfers],
        referral_id=case.referral_id,
        linked_submissions=len(case.duplicate_links),
        duplicate_links=[link.model_dump(mode="json") for link in case.duplicate_links],
        history=[
            h.model_dump(mode="json") | {"status_label": CASE_STATUS_LABELS[h.status]} for h in case.history
        ],
        version=case.version,
        duplicate=duplicate,
        linked=linked,
        message_zh="该纠纷与您已提交、尚在办理中的案件相同，已并入原案件办理" if linked else None,
    )


def case_summary(case: CaseDoc) -> CaseSummary:
    return CaseSummary(
        id=case.id,
        tracking_code=case.tracking_code,
        case_number=case.case_number,
        status=case.status,
        status_label=CASE_STATUS_LABELS[case.status],
        category=case.category,
        category_label=CATEGORY_LABELS[case.category],
        risk_level=case.risk_level,
        risk_label=RISK_LABELS[case.risk_level],
        county=case.county,
        organisation_id=case.organisation_id,
        mediator_id=case.mediator_id,
        received_at=case.received_at,
        next_deadline=next_deadline(case),
    )


# One message for every citizen's receipt, new case or repeat alike: the answer must not
# tell a stranger whether someone else already has a case with these parties.
CITIZEN_RECEIPT_MESSAGE = "申请已收到，工作人员将与您联系核实，请妥善保存查询码，凭查询码查询办理进度"


def receipt_out(
    case: CaseDoc | SubmissionReceipt, *, organisation: Organisation | None, duplicate: bool
) -> ReceiptOut:
    """A citizen's receipt of their own submission: a new case, or a repeat linked to one."""
    deadline: DeadlineOut | None
    if isinstance(case, SubmissionReceipt):
        status, deadline = CaseStatus.RECEIVED, _acceptance_deadline(case.acceptance_due)
    else:
        status, deadline = case.status, next_deadline(case)
    return ReceiptOut(
        tracking_code=case.tracking_code,
        status=status,
        status_label=CASE_STATUS_LABELS[status],
        organisation_name=organisation.name if organisation else None,
        next_deadline=deadline,
        duplicate=duplicate,
        message_zh=CITIZEN_RECEIPT_MESSAGE,
    )


def _acceptance_deadline(due: datetime) -> DeadlineOut:
    return DeadlineOut(kind="acceptance", label="受理期限", due=due)


def receipt_track_out(receipt: SubmissionReceipt, *, organisation: Organisation | None, tz: Any) -> TrackOut:
    """The tracking view of an anonymous repeat: its own submission, nothing of the case
    it was linked to (the desk contacts the submitter)."""
    return TrackOut(
        tracking_code=receipt.tracking_code,
        case_number=None,
        status=CaseStatus.RECEIVED,
        status_label=CASE_STATUS_LABELS[CaseStatus.RECEIVED],
        category_label=CATEGORY_LABELS[receipt.category],
        organisation_name=organisation.name if organisation else None,
        received_on=receipt.received_at.astimezone(tz).date(),
        next_deadline=_acceptance_deadline(receipt.acceptance_due),
        milestones=[{"on": receipt.received_at.astimezone(tz).date().isoformat(), "label": "申请已登记"}],
    )


# Milestones a citizen may see: the action and its date, never who did it.
_PUBLIC_ACTIONS = {
    "register": "申请已登记",
    "accept": "已受理",
    "reject": "不予受理",
    "assign": "已确定调解员",
    "record_session": "已开展调解",
    "resolve": "调解成功",
    "fail": "调解未达成协议",
    "follow_up": "已回访",
    "archive": "已归档",
    "withdraw": "已撤回",
    "transfer": "已转交其他调解组织办理",
    "pause_clock": "调解期限暂停",
    "resume_clock": "调解期限恢复",
    "extend_clock": "经双方同意延长调解期限",
}


def track_out(case: CaseDoc, *, organisation: Organisation | None, tz: Any) -> TrackOut:
    milestones = [
        {"on": h.at.astimezone(tz).date().isoformat(), "label": _PUBLIC_ACTIONS[h.action]}
        for h in case.history
        if h.action in _PUBLIC_ACTIONS
    ]
    return TrackOut(
        tracking_code=case.tracking_code,
        case_number=case.case_number,
        status=case.status,
        status_label=CASE_STATUS_LABELS[case.status],
        category_label=CATEGORY_LABELS[case.category],
        organisation_name=organisation.name if organisation else None,
        received_on=case.received_at.astimezone(tz).date(),
        next_deadline=next_deadline(case),
        milestones=milestones,
    )


def file_index_out(case: CaseDoc, parts: list[PartStatus]) -> FileIndexOut:
    missing = [p for p in parts if p.missing]
    return FileIndexOut(
        case_id=case.id,
        case_number=case.case_number,
        status=case.status,
        status_label=CASE_STATUS_LABELS[case.status],
        complete=not missing,
        missing=[p.code for p in missing],
        missing_labels=[p.label for p in missing],
        parts=[
            FilePartOut(
                code=p.code,
                order=p.order,
                label=p.label,
                label_en=p.label_en,
                required=p.required,
                present=p.present,
                missing=p.missing,
                items=p.items,
            )
            for p in parts
        ],
    )
