"""Where a hand-over may go, from what the registry told us of its organisations: the body
that receives a referral, the transfers the hierarchy allows (转办 sideways, 交办 down,
上报 up), and who hears of an overdue one. The rules are pure; the organisations, the
routing rule and the county centre are the runtime's directory
(`tiaojie.runtime.directory`), which `Hierarchy` reads for them."""

from __future__ import annotations

from collections.abc import Sequence

from tiaojie.contracts.common import Category, RiskLevel
from tiaojie.contracts.referral import AgencyReferralSubmitted
from tiaojie.referral.models import CaseView, Subject, TransferDoc
from tiaojie.referral.repository import ReferralRepository
from tiaojie.runtime.directory import Organisation, county_centre, route
from tiaojie.runtime.divisions import Divisions
from tiaojie.runtime.errors import FieldError

# How far up the hierarchy a walk goes (a cycle in the registry's data must not loop).
_MAX_DEPTH = 10


def submission_errors(data: AgencyReferralSubmitted, divisions: Divisions) -> list[FieldError]:
    """The referred dispute's county must exist, and its township lie in it."""
    submission = data.submission
    if not divisions.is_county(submission.county):
        return [
            FieldError("submission.county", "unknown_county", "县级行政区划代码不存在", "no such county code")
        ]
    if submission.township and divisions.county_of(submission.township) != submission.county:
        return [
            FieldError(
                "submission.township",
                "township_outside_county",
                "乡镇（街道）不属于所选县区",
                "township is not in the given county",
            )
        ]
    return []


def receiving_body(
    data: AgencyReferralSubmitted,
    *,
    named: Organisation | None,
    in_county: Sequence[Organisation],
    report_missing: bool = True,
) -> tuple[Organisation | None, list[FieldError]]:
    """The named body if valid, else where the directory's routing rule sends the dispute.

    The submission carries no risk rating (intake rates the case when it registers it)
    and a referral is received in one county, so the rule sees an ordinary, not
    cross-county dispute. `report_missing=False` leaves out "no receiving body" (the
    submission is refused for another reason already)."""
    submission = data.submission
    if data.organisation_id:
        if named is None or not named.active or named.county != submission.county:
            return named, [
                FieldError(
                    "organisation_id",
                    "unknown_organisation",
                    "接收的调解组织不存在或不在该县区",
                    "no such active organisation in this county",
                )
            ]
        return named, []
    routed = route(
        county=submission.county,
        township=submission.township,
        category=submission.category or Category.OTHER,
        risk_level=RiskLevel.ORDINARY,
        cross_county=False,
        in_county=in_county,
    )
    if routed.organisation is None and report_missing:
        return None, [
            FieldError(
                "submission.county",
                "no_receiving_body",
                "该县区尚无可接收的调解组织",
                "no mediation body in this county can receive referrals yet",
            )
        ]
    return routed.organisation, []


def transfer_errors(
    case: CaseView,
    kind: str,
    target: Organisation | None,
    *,
    reason_code: str,
    due_days: int | None,
    target_ancestors: list[str],
    holder_ancestors: list[str],
) -> list[FieldError]:
    """Why a transfer of `case` to `target` is not allowed (nothing if it is).

    交办 goes to a body below the holder (the holder is among the target's ancestors), 上报
    to one above it for a grave or cross-county case; only 交办 carries a deadline."""
    if target is None or not target.active:
        return [
            FieldError(
                "to_organisation_id",
                "unknown_organisation",
                "接收的调解组织不存在",
                "no such active organisation",
            )
        ]
    if target.id == case.organisation_id:
        return [
            FieldError(
                "to_organisation_id",
                "same_organisation",
                "案件已在该调解组织",
                "the case is already with this organisation",
            )
        ]
    errors: list[FieldError] = []
    holder = case.organisation_id
    if kind == "assign_down":
        if holder is None or holder not in target_ancestors:
            errors.append(
                FieldError(
                    "to_organisation_id",
                    "not_subordinate",
                    "交办只能交给下级调解组织",
                    "交办 goes only to a body below the one holding the case",
                )
            )
    elif kind == "escalate_up":
        if holder is None or target.id not in holder_ancestors:
            errors.append(
                FieldError(
                    "to_organisation_id",
                    "not_superior",
                    "上报只能报给上级调解组织",
                    "上报 goes only to a body above the one holding the case",
                )
            )
        if reason_code not in ("grave", "cross_county"):
            errors.append(
                FieldError(
                    "reason_code",
                    "escalation_reason",
                    "上报须说明原因：重大（grave）或跨县区（cross_county）",
                    "上报 needs a reason code: grave or cross_county",
                )
            )
        elif reason_code == "grave" and case.risk_level != "grave":
            errors.append(
                FieldError(
                    "reason_code",
                    "not_grave",
                    "该案件未被评为重大风险",
                    "the case is not rated grave",
                )
            )
    if due_days is not None and kind != "assign_down":
        errors.append(
            FieldError(
                "due_days",
                "due_only_for_assign_down",
                "只有交办可设办理期限",
                "only 交办 carries a deadline",
            )
        )
    return errors


def holder_of(doc: Subject) -> str | None:
    """The body a referral or transfer is with now."""
    return doc.to_organisation_id if isinstance(doc, TransferDoc) else doc.organisation_id


def escalation_targets(doc: Subject, *, holder_parent: str | None, centre: Organisation | None) -> list[str]:
    """Who hears of an overdue hand-over: the holder's parent body and the county centre,
    and for a transfer the body that sent it (交办 is supervised by the body that assigned it)."""
    targets: list[str] = []
    if isinstance(doc, TransferDoc) and doc.from_organisation_id:
        targets.append(doc.from_organisation_id)
    if holder_parent:
        targets.append(holder_parent)
    if centre is not None:
        targets.append(centre.id)
    holder = holder_of(doc)
    return [t for t in dict.fromkeys(targets) if t != holder]


class Hierarchy:
    """Reads the organisation directory for the rules above."""

    def __init__(self, *, repository: ReferralRepository) -> None:
        self.directory = repository.directory

    async def get(self, organisation_id: str) -> Organisation | None:
        return await self.directory.get(organisation_id)

    async def in_county(self, county: str) -> list[Organisation]:
        return await self.directory.in_county(county)

    async def ancestors(self, organisation_id: str) -> list[str]:
        """Parents of an organisation up the hierarchy (nearest first)."""
        found: list[str] = []
        current = await self.directory.get(organisation_id)
        while (
            current is not None
            and current.parent_id
            and current.parent_id not in found
            and len(found) < _MAX_DEPTH
        ):
            found.append(current.parent_id)
            current = await self.directory.get(current.parent_id)
        return found

    async def escalations(self, docs: list[Subject]) -> dict[str, list[str]]:
        """`escalation_targets` by subject id, each holder's parent and county's centre read once."""
        parents: dict[str, str | None] = {}
        centres: dict[str, Organisation | None] = {}
        targets: dict[str, list[str]] = {}
        for doc in docs:
            holder = holder_of(doc)
            if holder and holder not in parents:
                held_by = await self.directory.get(holder)
                parents[holder] = held_by.parent_id if held_by else None
            if doc.county not in centres:
                centres[doc.county] = county_centre(await self.in_county(doc.county), county=doc.county)
            targets[doc.id] = escalation_targets(
                doc, holder_parent=parents.get(holder) if holder else None, centre=centres[doc.county]
            )
        return targets
