"""Eligibility of a mediator, computed on the day it is asked for (never stored)."""

from __future__ import annotations

from datetime import date

from tiaojie.contracts.common import MediatorStatus
from tiaojie.registry.models import MediatorDoc, Sanction

# Reason codes with their Chinese and English wording (API, events, reports).
REASONS: dict[str, tuple[str, str]] = {
    "revoked": ("调解员资格已撤销或已被解聘", "mediator is revoked or dismissed"),
    "suspended": ("调解员被暂停调解工作", "mediator is suspended"),
    "uncertified": ("调解员未取得证书（持证上岗）", "mediator holds no certificate"),
    "certificate_expired": ("调解员证书已过期", "mediator's certificate has expired"),
    "certificate_not_yet_valid": ("调解员证书尚未生效", "mediator's certificate is not valid yet"),
    "conflict_of_interest": (
        "调解员是当事人或与当事人有登记的关系，应当回避",
        "mediator is a party or related to a party",
    ),
    "grade_below_required": ("调解员等级不满足该风险等级的要求", "mediator's grade is too low for the risk"),
    "at_capacity": ("调解员在办案件已达上限", "mediator carries as many open cases as allowed"),
}


def suspended_until(mediator: MediatorDoc, *, today: date) -> date | None:
    """End of the latest disciplinary suspension in force today or starting later."""
    ends = [
        d.ends_on or date.max
        for d in mediator.discipline
        if d.sanction == Sanction.SUSPENSION and (d.ends_on is None or d.ends_on >= today)
    ]
    return max(ends) if ends else None


def effective_status(mediator: MediatorDoc, *, today: date) -> MediatorStatus:
    """The stored status, overridden by a dismissal or a suspension in force today."""
    if mediator.status == MediatorStatus.REVOKED:
        return MediatorStatus.REVOKED
    for record in mediator.discipline:
        if record.starts_on > today:
            continue
        if record.sanction == Sanction.DISMISSAL:
            return MediatorStatus.REVOKED
        if record.sanction == Sanction.SUSPENSION and (record.ends_on is None or record.ends_on >= today):
            return MediatorStatus.SUSPENDED
    return mediator.status


def certificate_valid(mediator: MediatorDoc, *, today: date) -> bool:
    """Holds a certificate with a number, already issued and not expired today."""
    return not certificate_problems(mediator, today=today)


def certificate_problems(mediator: MediatorDoc, *, today: date) -> list[str]:
    if not mediator.certificate_number or mediator.certificate_expires_on is None:
        return ["uncertified"]
    if mediator.certificate_expires_on < today:
        return ["certificate_expired"]
    if mediator.certificate_issued_on is not None and mediator.certificate_issued_on > today:
        return ["certificate_not_yet_valid"]
    return []


def ineligibility(mediator: MediatorDoc, *, today: date) -> list[str]:
    """Why a mediator may get no case today (empty when eligible)."""
    status = effective_status(mediator, today=today)
    reasons = []
    if status == MediatorStatus.REVOKED:
        reasons.append("revoked")
    elif status == MediatorStatus.SUSPENDED:
        reasons.append("suspended")
    return reasons + certificate_problems(mediator, today=today)


def eligible(mediator: MediatorDoc, *, today: date) -> bool:
    """Active (no sanction in force), certified and the certificate valid today."""
    return not ineligibility(mediator, today=today)


def conflicted(mediator: MediatorDoc, party_keys: set[str]) -> bool:
    """The mediator is a party, or a person recorded as related to them is."""
    if mediator.id_number_key and mediator.id_number_key in party_keys:
        return True
    return any(r.key in party_keys for r in mediator.relations)
