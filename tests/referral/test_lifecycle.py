"""Every transition of the referral and transfer state machines (pure rules, no servers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tiaojie.contracts import topics
from tiaojie.contracts.common import AgencyKind, Category
from tiaojie.contracts.referral import (
    AgencyReferralAccepted,
    AgencyReferralClosed,
    AgencyReferralDeclined,
    AgencyReferralExtended,
    AgencyReferralInMediation,
    AgencyReferralReceived,
    DeadlineCleared,
    DeadlineExtended,
    DeadlineOverdue,
    DeadlineReminded,
    ReferralAccepted,
    ReferralClosed,
    ReferralDeclined,
    ReferralInMediation,
    ReferralRequested,
    TransferAccepted,
    TransferCompleted,
    TransferDeclined,
    TransferRequested,
)
from tiaojie.referral import lifecycle
from tiaojie.referral.deadlines import DeadlineRules
from tiaojie.referral.models import CaseView, ReferralDoc, TransferDoc
from tiaojie.referral.settings import ReferralSettings
from tiaojie.runtime.calendar import default_calendar
from tiaojie.runtime.errors import Conflict, IllegalTransition

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Beijing
RULES = DeadlineRules(ReferralSettings(), default_calendar())


def referral(kind: str = "delegation", agency_kind: AgencyKind = AgencyKind.COURT) -> ReferralDoc:
    doc = ReferralDoc(
        id="r1",
        status="requested",
        county="371302",
        organisation_id="org-centre",
        clock_kind=kind,
        response_due=T0,
        agency_id="court-lanshan",
        agency_kind=agency_kind,
        agency_ref="(2026)鲁1302民诉前调1号",
        referral_kind=kind,
        category=Category.CONTRACT,
        submission_enc="sealed",
        requested_at=T0,
    )
    lifecycle.received(doc, RULES, now=T0)
    return doc


def types(effects: list[lifecycle.Effect] | None) -> list[type]:
    assert effects is not None
    return [type(e.data) for e in effects]


def test_received_starts_the_response_clock_and_tells_the_agency() -> None:
    doc = ReferralDoc(
        id="r1",
        status="requested",
        county="371302",
        organisation_id="org-centre",
        clock_kind="delegation",
        response_due=T0,
        agency_id="court-lanshan",
        agency_kind=AgencyKind.COURT,
        agency_ref="ref-1",
        referral_kind="delegation",
        submission_enc="sealed",
        requested_at=T0,
    )
    effects = lifecycle.received(doc, RULES, now=T0)
    assert types(effects) == [ReferralRequested, AgencyReferralReceived]
    assert effects[0].topic == topics.REFERRALS and effects[0].key == "r1"
    assert effects[1].topic == topics.agency_outcomes("court-lanshan") and effects[1].key == "ref-1"
    assert doc.response_due == RULES.response_due(T0)
    assert set(doc.timers) == {"response-remind", "response-overdue"}


def test_accept_starts_the_handling_clock_and_carries_the_sealed_submission() -> None:
    doc = referral()
    effects = lifecycle.accept(doc, RULES, by="desk-1", organisation_id=None, now=T0 + timedelta(hours=3))
    assert types(effects) == [ReferralAccepted, AgencyReferralAccepted]
    assert effects is not None
    accepted = effects[0].data
    assert isinstance(accepted, ReferralAccepted)
    assert accepted.submission_enc == "sealed" and accepted.agency_ref == doc.agency_ref
    assert accepted.due == RULES.handling_due("delegation", T0 + timedelta(hours=3))
    assert doc.status == "accepted" and doc.due == accepted.due
    assert doc.timers["response-remind"].state == "cancelled"
    assert doc.timers["handling-overdue"].state == "pending"
    # Accepting again is a no-op (a retried request), declining now is illegal.
    assert lifecycle.accept(doc, RULES, by="desk-1", organisation_id=None, now=T0) is None
    with pytest.raises(IllegalTransition):
        lifecycle.decline(doc, by="desk-1", reason="不属于本组织受理范围", now=T0)


def test_decline_returns_the_referral_with_its_reason() -> None:
    doc = referral()
    effects = lifecycle.decline(doc, by="desk-1", reason="不属于本组织受理范围", now=T0)
    assert types(effects) == [ReferralDeclined, AgencyReferralDeclined]
    assert effects is not None and effects[1].data.reason == "不属于本组织受理范围"  # type: ignore[attr-defined]
    assert doc.status == "declined"
    assert all(t.state == "cancelled" for t in doc.timers.values())
    assert lifecycle.decline(doc, by="desk-1", reason="again", now=T0) is None
    with pytest.raises(IllegalTransition):
        lifecycle.accept(doc, RULES, by="desk-1", organisation_id=None, now=T0)


def test_case_opened_then_mediation_then_resolved_ready_for_judicial_confirmation() -> None:
    doc = referral()
    lifecycle.accept(doc, RULES, by="desk-1", organisation_id=None, now=T0)
    assert lifecycle.case_opened(doc, case_id="c1", organisation_id="org-centre", now=T0) == []
    assert doc.case_id == "c1"
    assert lifecycle.case_opened(doc, case_id="c1", organisation_id="org-centre", now=T0) is None
    effects = lifecycle.mediation_started(doc, case_id="c1", organisation_id="org-tc", now=T0)
    assert types(effects) == [ReferralInMediation, AgencyReferralInMediation]
    assert doc.status == "in_mediation" and doc.organisation_id == "org-tc"
    assert lifecycle.mediation_started(doc, case_id="c1", organisation_id="org-tc", now=T0) is None
    effects = lifecycle.closed(
        doc,
        outcome="resolved",
        case_id="c1",
        now=T0 + timedelta(days=9),
        agreement_summary="被申请人分期支付货款",
    )
    assert types(effects) == [ReferralClosed, AgencyReferralClosed]
    assert effects is not None
    notice = effects[1].data
    assert isinstance(notice, AgencyReferralClosed)
    assert notice.outcome == "resolved" and notice.agreement_summary == "被申请人分期支付货款"
    assert notice.judicial_confirmation_ready is True  # it came from a court
    assert notice.agency_ref == "(2026)鲁1302民诉前调1号" and effects[1].key == notice.agency_ref
    assert doc.timers["handling-overdue"].state == "cancelled"
    assert lifecycle.closed(doc, outcome="resolved", case_id="c1", now=T0) is None  # redelivered


def test_failed_police_referral_tells_the_sender_the_route() -> None:
    doc = referral("police", AgencyKind.POLICE)
    lifecycle.accept(doc, RULES, by="desk-1", organisation_id=None, now=T0)
    effects = lifecycle.closed(
        doc, outcome="failed", case_id="c2", now=T0, route="litigation", reason="双方分歧过大"
    )
    assert effects is not None
    notice = effects[1].data
    assert isinstance(notice, AgencyReferralClosed)
    assert (notice.outcome, notice.route, notice.judicial_confirmation_ready) == (
        "failed",
        "litigation",
        False,
    )


def test_withdrawn_closes_and_closing_before_acceptance_is_illegal() -> None:
    doc = referral("petition", AgencyKind.PETITION)
    with pytest.raises(IllegalTransition):
        lifecycle.closed(doc, outcome="withdrawn", case_id="c3", now=T0)
    lifecycle.accept(doc, RULES, by="desk-1", organisation_id=None, now=T0)
    effects = lifecycle.closed(doc, outcome="withdrawn", case_id="c3", now=T0)
    assert types(effects) == [ReferralClosed, AgencyReferralClosed]
    assert doc.status == "withdrawn"


def test_reminder_then_overdue_then_cleared_by_the_answer() -> None:
    doc = referral()
    remind_at = doc.timers["response-remind"].at
    assert (
        lifecycle.fire(doc, "response-remind", now=remind_at - timedelta(seconds=1), escalate_to=[]) is None
    )
    effects = lifecycle.fire(doc, "response-remind", now=remind_at, escalate_to=[])
    assert types(effects) == [DeadlineReminded]
    assert effects is not None and 0.79 < effects[0].data.share_used <= 0.81  # type: ignore[attr-defined]
    assert lifecycle.fire(doc, "response-remind", now=remind_at, escalate_to=[]) is None  # once only
    effects = lifecycle.fire(
        doc, "response-overdue", now=doc.response_due, escalate_to=["org-parent", "org-centre"]
    )
    assert types(effects) == [DeadlineOverdue]
    assert effects is not None and effects[0].data.escalated_to == ["org-parent", "org-centre"]  # type: ignore[attr-defined]
    assert doc.overdue and doc.overdue_stages == ["response"]
    effects = lifecycle.accept(
        doc, RULES, by="desk-1", organisation_id=None, now=doc.response_due + timedelta(hours=1)
    )
    assert types(effects) == [DeadlineCleared, ReferralAccepted, AgencyReferralAccepted]
    assert not doc.overdue


def test_extension_moves_the_deadline_and_clears_an_overdue_handling_stage() -> None:
    doc = referral("petition", AgencyKind.PETITION)
    lifecycle.accept(doc, RULES, by="desk-1", organisation_id=None, now=T0)
    assert doc.due is not None
    lifecycle.fire(doc, "handling-overdue", now=doc.due, escalate_to=[])
    assert doc.overdue
    first_due = doc.due
    effects = lifecycle.extend(
        doc, RULES, days=30, by_agreement=False, reason="案情复杂", by="c1", now=doc.due
    )
    assert types(effects) == [DeadlineCleared, DeadlineExtended, AgencyReferralExtended]
    assert doc.due > first_due and not doc.overdue
    assert doc.timers["handling-overdue"].state == "pending" and doc.timers["handling-overdue"].at == doc.due
    with pytest.raises(Conflict):  # a petition is extended once only
        lifecycle.extend(doc, RULES, days=10, by_agreement=False, reason="", by="c1", now=doc.due)


def test_extension_before_acceptance_is_illegal() -> None:
    with pytest.raises(IllegalTransition):
        lifecycle.extend(referral(), RULES, days=10, by_agreement=True, reason="", by="c1", now=T0)


def test_case_moved_by_a_transfer_is_a_hop_of_the_referral() -> None:
    doc = referral("petition", AgencyKind.PETITION)
    lifecycle.accept(doc, RULES, by="desk-1", organisation_id=None, now=T0)
    assert lifecycle.moved(doc, organisation_id="org-tc2", transfer_id="t1", kind="lateral", now=T0) == []
    assert doc.organisation_id == "org-tc2" and doc.history[-1].action == "transfer:lateral"
    assert lifecycle.moved(doc, organisation_id="org-tc2", transfer_id="t1", kind="lateral", now=T0) is None


def transfer(kind: str = "assign_down") -> TransferDoc:
    doc = TransferDoc(
        id="t1",
        status="requested",
        county="371302",
        organisation_id="org-centre",
        clock_kind="mediation",
        response_due=T0,
        case_id="c1",
        kind=kind,
        reason="属地管辖",
        from_organisation_id="org-centre",
        to_organisation_id="org-tc",
        to_county="371302",
        requested_by="center-1",
        requested_at=T0,
        due_days=20,
    )
    effects = lifecycle.transfer_requested(doc, RULES, now=T0)
    assert types(effects) == [TransferRequested]
    return doc


def test_assign_down_is_supervised_until_the_case_closes() -> None:
    doc = transfer()
    case = CaseView(
        id="c1",
        county="371302",
        status="assigned",
        risk_level="serious",
        party_keys=["k1"],
        at=T0,
        category=Category.LABOUR,
    )
    effects = lifecycle.transfer_accepted(doc, RULES, by="desk-2", case=case, now=T0)
    assert types(effects) == [TransferAccepted]
    assert effects is not None
    accepted = effects[0].data
    assert isinstance(accepted, TransferAccepted)
    assert (accepted.risk_level, accepted.party_keys, accepted.category) == (
        "serious",
        ["k1"],
        Category.LABOUR,
    )
    assert doc.due == RULES.handling_due("mediation", T0, 20)
    assert doc.timers["handling-overdue"].state == "pending"
    assert lifecycle.transfer_accepted(doc, RULES, by="desk-2", case=case, now=T0) is None
    effects = lifecycle.transfer_case_closed(doc, outcome="resolved", now=T0 + timedelta(days=3))
    assert types(effects) == [TransferCompleted]
    assert doc.status == "completed" and doc.timers["handling-overdue"].state == "cancelled"


def test_lateral_transfer_has_no_handling_clock_and_decline_returns_it() -> None:
    accepted = transfer("lateral")
    lifecycle.transfer_accepted(accepted, RULES, by="desk-2", case=None, now=T0)
    assert accepted.due is None and "handling-overdue" not in accepted.timers
    assert lifecycle.transfer_case_closed(accepted, outcome="resolved", now=T0) is None
    declined = transfer("escalate_up")
    effects = lifecycle.transfer_declined(declined, by="desk-2", reason="不属于重大案件", now=T0)
    assert types(effects) == [TransferDeclined]
    assert declined.status == "declined" and declined.decline_reason == "不属于重大案件"
    with pytest.raises(IllegalTransition):
        lifecycle.transfer_accepted(declined, RULES, by="desk-2", case=None, now=T0)


def test_a_hand_over_between_bodies_sends_no_agency_notice() -> None:
    doc = ReferralDoc(
        id="r9",
        status="requested",
        county="371302",
        organisation_id="org-centre",
        clock_kind="mediation",
        response_due=T0,
        referral_kind="mediation",
        submission_enc="sealed",
        requested_at=T0,
    )
    assert types(lifecycle.received(doc, RULES, now=T0)) == [ReferralRequested]
