"""The per-action rules around the state machines, as the pure functions the storage engine
calls (no servers): a rule's change through the engine, routing and the hierarchy,
agencies, the projections, and the timers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tiaojie.contracts import topics
from tiaojie.contracts.common import AgencyKind, CaseStatus, Category, Channel
from tiaojie.contracts.intake import (
    CaseAccepted,
    CaseFailed,
    CaseRegistered,
    CaseRejected,
    CaseResolved,
    CaseWithdrawn,
    FollowUpRecorded,
    SessionRecorded,
)
from tiaojie.contracts.referral import AgencyReferralSubmitted
from tiaojie.contracts.registry import OrganisationUpdated
from tiaojie.referral import lifecycle
from tiaojie.referral.agencies import announced, deactivated, principal_recorded
from tiaojie.referral.deadlines import DeadlineRules
from tiaojie.referral.models import AgencyDoc, CaseView, ReferralDoc, TransferDoc
from tiaojie.referral.projections import case_projected, in_order, outcome_of
from tiaojie.referral.routing import escalation_targets, receiving_body, transfer_errors
from tiaojie.referral.settings import ReferralSettings
from tiaojie.referral.subjects import change_of, decision, timer_day
from tiaojie.referral.timers import due_keys, fire_due, fired_between, reindexed
from tiaojie.runtime.calendar import default_calendar
from tiaojie.runtime.directory import Organisation, county_centre
from tiaojie.runtime.errors import NotFound

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Beijing
RULES = DeadlineRules(ReferralSettings(), default_calendar())
COUNTY = "371302"
NOUN = ("移交", "referral")


def referral(**fields: object) -> ReferralDoc:
    doc = ReferralDoc.model_validate(
        {
            "_id": "r1",
            "status": "requested",
            "county": COUNTY,
            "organisation_id": "org-tc",
            "clock_kind": "delegation",
            "response_due": T0,
            "agency_id": "court-lanshan",
            "agency_kind": AgencyKind.COURT,
            "agency_ref": "ref-1",
            "referral_kind": "delegation",
            "submission_enc": "sealed",
            "requested_at": T0,
            **fields,
        }
    )
    lifecycle.received(doc, RULES, now=T0)
    return doc


def org(id: str, kind: str = "township_committee", **fields: object) -> Organisation:
    return Organisation.model_validate(
        {
            "_id": id,
            "name": id,
            "kind": kind,
            "level": "county" if kind == "centre" else "township",
            "county": COUNTY,
            "division_code": COUNTY if kind == "centre" else f"{COUNTY}001",
            **fields,
        }
    )


# -- a rule's change through the engine ------------------------------------------------------


def test_the_timer_index_is_the_earliest_pending_timer_never_before_today() -> None:
    doc = referral()
    remind = doc.timers["response-remind"].at
    assert timer_day(doc, T0) == remind.astimezone(UTC).date().isoformat()
    later = remind + timedelta(days=3)  # a change made after the timer was due: looked at that day
    assert timer_day(doc, later) == later.date().isoformat()
    for timer in doc.timers.values():
        timer.state = "cancelled"
    assert timer_day(doc, T0) is None


def test_a_change_is_one_version_on_with_events_named_after_that_revision() -> None:
    doc = referral()
    doc.version = 4
    effects = lifecycle.decline(doc, by="desk-1", reason="不属于受理范围", now=T0)
    assert effects is not None
    change = change_of(doc, effects, now=T0)
    assert change.state["version"] == 5 and change.state["status"] == "declined"
    assert change.state["timer_day"] is None  # nothing pending once declined
    [(topic, declined), (agency_topic, notice)] = change.events
    assert (topic, declined.type) == (topics.REFERRALS, "tiaojie.referral.ReferralDeclined")
    assert agency_topic == topics.agency_outcomes("court-lanshan") and notice.subject == "ref-1"
    # Decided again (a lost claim) on the same state: the same ids, so one event each.
    again = referral()
    again.version = 4
    repeat = change_of(again, lifecycle.decline(again, by="desk-1", reason="x", now=T0) or [], now=T0)
    assert [e.id for _, e in repeat.events] == [declined.id, notice.id]


def test_a_decision_hides_what_the_caller_may_not_see_and_skips_what_is_done() -> None:
    state = referral().to_mongo()

    def accept(doc: ReferralDoc) -> list[lifecycle.Effect] | None:
        return lifecycle.accept(doc, RULES, by="desk-1", organisation_id=None, now=T0)

    with pytest.raises(NotFound):
        decision(ReferralDoc, accept, now=T0, noun=NOUN)(None)
    assert decision(ReferralDoc, accept, now=T0, noun=NOUN, missing_ok=True)(None) is None
    hidden = decision(ReferralDoc, accept, now=T0, noun=NOUN, visible=lambda d: d.county == "371311")
    with pytest.raises(NotFound):
        hidden(state)
    accepted = decision(ReferralDoc, accept, now=T0, noun=NOUN)(state)
    assert accepted is not None and accepted.state["status"] == "accepted"
    assert state["status"] == "requested"  # the state it was given is left as it was
    assert decision(ReferralDoc, accept, now=T0, noun=NOUN)(accepted.state) is None  # applied already


# -- routing ---------------------------------------------------------------------------------


def submitted(**fields: object) -> AgencyReferralSubmitted:
    submission = {
        "channel": Channel.REFERRAL,
        "county": COUNTY,
        "township": f"{COUNTY}001",
        "category": "contract",
        "description": "买卖合同纠纷：被告拖欠货款三万元，双方同意诉前调解。",
        "applicants": [{"name": "王某", "id_number": "371302198001011239"}],
    }
    return AgencyReferralSubmitted.model_validate(
        {"agency_ref": "R-1", "referral_kind": "delegation", "submission": submission, **fields}
    )


def test_a_referral_goes_to_its_township_committee_else_to_the_county_centre() -> None:
    centre, committee = org("org-centre", "centre"), org("org-tc")
    body, errors = receiving_body(submitted(), named=None, in_county=[centre, committee])
    assert (body, errors) == (committee, [])
    elsewhere = submitted().model_copy(
        update={"submission": submitted().submission.model_copy(update={"township": f"{COUNTY}009"})}
    )
    assert receiving_body(elsewhere, named=None, in_county=[centre, committee]) == (centre, [])
    assert county_centre([committee, org("org-old", "centre", active=False)]) is None
    nobody, missing = receiving_body(elsewhere, named=None, in_county=[committee])
    assert nobody is None and [e.code for e in missing] == ["no_receiving_body"]
    assert receiving_body(elsewhere, named=None, in_county=[], report_missing=False) == (None, [])
    inactive = org("org-tc", active=False)
    _, refused = receiving_body(submitted(organisation_id="org-tc"), named=inactive, in_county=[])
    assert [e.code for e in refused] == ["unknown_organisation"]


def test_an_industry_committee_covering_the_category_receives_before_the_township() -> None:
    """The directory's routing rule: what referral's own copy of it lacked."""
    centre, committee = org("org-centre", "centre"), org("org-tc")
    industry = org(
        "org-ic", "industry_committee", level="county", division_code=COUNTY, categories=["contract"]
    )
    bodies = [centre, committee, industry]
    body, errors = receiving_body(submitted(), named=None, in_county=bodies)
    assert (body, errors) == (industry, [])
    other = submitted().model_copy(
        update={"submission": submitted().submission.model_copy(update={"category": "neighbourhood"})}
    )
    assert receiving_body(other, named=None, in_county=bodies) == (committee, [])
    uncategorised = submitted().model_copy(
        update={"submission": submitted().submission.model_copy(update={"category": None})}
    )
    assert receiving_body(uncategorised, named=None, in_county=[centre, committee, industry]) == (
        committee,
        [],
    )


def case(**fields: object) -> CaseView:
    return CaseView.model_validate(
        {
            "_id": "c1",
            "county": COUNTY,
            "status": "accepted",
            "organisation_id": "org-centre",
            "at": T0,
            **fields,
        }
    )


def test_transfers_follow_the_hierarchy() -> None:
    committee = org("org-tc", parent_id="org-centre")

    def errors(
        kind: str,
        target: Organisation,
        *,
        on: CaseView | None = None,
        reason_code: str = "",
        due_days: int | None = None,
        below: tuple[str, ...] = (),
        above: tuple[str, ...] = (),
    ) -> list[str]:
        found = transfer_errors(
            on or case(),
            kind,
            target,
            reason_code=reason_code,
            due_days=due_days,
            target_ancestors=list(below),
            holder_ancestors=list(above),
        )
        return [e.code for e in found]

    assert errors("assign_down", committee, below=("org-centre",), due_days=20) == []
    assert errors("assign_down", committee, below=()) == ["not_subordinate"]
    assert errors("lateral", committee, due_days=20) == ["due_only_for_assign_down"]
    up = org("org-centre", "centre")
    held_below = case(organisation_id="org-tc")
    assert errors("escalate_up", up, on=held_below, above=("org-centre",)) == ["escalation_reason"]
    assert errors("escalate_up", up, on=held_below, above=("org-centre",), reason_code="grave") == [
        "not_grave"
    ]
    grave = case(organisation_id="org-tc", risk_level="grave")
    assert errors("escalate_up", up, on=grave, above=("org-centre",), reason_code="grave") == []
    assert errors("lateral", up) == ["same_organisation"]
    assert errors("lateral", org("org-x", active=False)) == ["unknown_organisation"]


def test_an_overdue_hand_over_is_reported_up_and_to_the_sender_of_a_transfer() -> None:
    centre = org("org-centre", "centre")
    assert escalation_targets(referral(), holder_parent="org-centre", centre=centre) == ["org-centre"]
    transfer = TransferDoc.model_validate(
        {
            "_id": "t1",
            "status": "accepted",
            "county": COUNTY,
            "clock_kind": "mediation",
            "response_due": T0,
            "case_id": "c1",
            "kind": "assign_down",
            "from_organisation_id": "org-street",
            "to_organisation_id": "org-tc",
            "to_county": COUNTY,
            "requested_by": "center-1",
            "requested_at": T0,
        }
    )
    assert escalation_targets(transfer, holder_parent="org-street", centre=centre) == [
        "org-street",
        "org-centre",
    ]
    assert escalation_targets(transfer, holder_parent=None, centre=org("org-tc", "centre")) == ["org-street"]


# -- agencies --------------------------------------------------------------------------------


def agency(**fields: object) -> dict[str, object]:
    return AgencyDoc.model_validate(
        {
            "_id": "court-lanshan",
            "kind": "court",
            "county": COUNTY,
            "name": "兰山区人民法院",
            "source": "/agencies/court-lanshan",
            "registered_at": T0,
            "registered_by": "admin",
            "announced": False,
            **fields,
        }
    ).to_mongo()


def test_an_agency_is_announced_once_and_deactivated_once() -> None:
    first = announced(agency(), now=T0)
    assert first is not None and first.state["announced"] is True
    [(topic, event)] = first.events
    assert topic == topics.AGENCIES and event.type == "tiaojie.referral.AgencyRegistered"
    assert announced(first.state, now=T0) is None
    gone = deactivated(first.state, now=T0)
    assert gone is not None and gone.state["active"] is False
    assert [e.type for _, e in gone.events] == ["tiaojie.referral.AgencyDeactivated"]
    assert deactivated(gone.state, now=T0) is None
    with pytest.raises(NotFound):
        announced(None, now=T0)


def test_only_a_later_credential_of_an_active_agency_is_recorded() -> None:
    rotated = principal_recorded(agency(credential_seq=1), seq=2, principal="agency-court-lanshan.2")
    assert rotated is not None
    assert (rotated.state["kafka_principal"], rotated.state["credential_seq"]) == (
        "agency-court-lanshan.2",
        2,
    )
    assert rotated.events == ()
    assert principal_recorded(rotated.state, seq=2, principal="agency-court-lanshan.2") is None
    assert principal_recorded(rotated.state, seq=1, principal="agency-court-lanshan") is None
    assert principal_recorded(agency(active=False), seq=3, principal="agency-court-lanshan.3") is None


# -- projections ------------------------------------------------------------------------------


def updated(version: int, name: str) -> OrganisationUpdated:
    return OrganisationUpdated(
        organisation_id="org-tc",
        version=version,
        name=name,
        short_name=name,
        kind="township_committee",
        level="township",
        county=COUNTY,
        division_code=f"{COUNTY}001",
    )


def registration(**fields: object) -> CaseRegistered:
    return CaseRegistered.model_validate(
        {
            "case_id": "c1",
            "channel": Channel.REFERRAL,
            "county": COUNTY,
            "category": Category.CONTRACT,
            "organisation_id": "org-centre",
            "received_at": T0,
            "referral_id": "r1",
            **fields,
        }
    )


def test_the_case_projection_keeps_only_what_transfers_read() -> None:
    base = {"case_id": "c1", "county": COUNTY, "organisation_id": "org-tc", "at": T0}
    accepted = CaseAccepted(
        **base, status=CaseStatus.ACCEPTED, case_number="(2026)1号", mediation_due=T0 + timedelta(days=30)
    )
    session = SessionRecorded(**base, status=CaseStatus.IN_MEDIATION, session_number=1, held_at=T0)
    resolved = CaseResolved(**base, status=CaseStatus.RESOLVED, agreement_form="written")
    first = case_projected(None, [registration(), accepted, session])
    assert first is not None and first.state == {
        "county": COUNTY,
        "category": "contract",
        "organisation_id": "org-tc",
        "risk_level": "ordinary",
        "party_keys": [],
        "ended": False,
    }
    assert case_projected(first.state, [registration(), accepted]) is None  # redelivered
    # Events that change nothing a transfer reads write nothing, whatever their time.
    later = session.model_copy(update={"session_number": 2, "at": T0 + timedelta(days=2)})
    assert case_projected(first.state, [later]) is None
    closed = case_projected(first.state, [resolved])
    assert closed is not None and closed.state["ended"] is True
    again = case_projected(closed.state, [registration()])  # a late registration keeps the end
    assert again is not None and again.state["ended"] is True
    followed = FollowUpRecorded(**base, status=CaseStatus.FOLLOWED_UP)
    assert case_projected(closed.state, [followed]) is None


def test_a_case_projection_stored_before_loads_and_continues() -> None:
    # It kept the status, the time, the registry's assignment (alone, when it came first).
    old = {"_id": "c1", "county": COUNTY, "status": "resolved", "organisation_id": "org-tc", "at": T0}
    view = CaseView.model_validate({**old, "assigned_organisation_id": "org-tc", "referral_id": "r1"})
    assert view.ended and view.organisation_id == "org-tc"
    assert CaseView.model_validate({**old, "status": "accepted"}).ended is False
    assigned_only = {"_id": "c2", "assigned_organisation_id": "org-tc", "version": 1}
    registered = case_projected(assigned_only, [registration(case_id="c2")])
    assert registered is not None and "assigned_organisation_id" not in registered.state
    assert CaseView.model_validate({"_id": "c2", **registered.state}).county == COUNTY


def test_steps_of_one_batch_fold_into_one_change() -> None:
    doc = referral()
    untouched = in_order([lambda d: None, lambda d: None])
    assert untouched(doc) is None
    opened = in_order([lambda d: None, lambda d: [], lambda d: None])
    assert opened(doc) == []  # changed, without events


def test_how_a_case_ends_reads_for_the_sender() -> None:
    base = {"case_id": "c1", "county": COUNTY, "at": T0}
    assert outcome_of(CaseResolved(**base, status=CaseStatus.RESOLVED, agreement_form="oral")) == (
        "resolved",
        {"agreement_summary": ""},
    )
    failed = CaseFailed(**base, status=CaseStatus.FAILED, route="litigation", reason="拒绝调解")
    assert outcome_of(failed) == ("failed", {"route": "litigation", "reason": "拒绝调解"})
    rejected = CaseRejected(**base, status=CaseStatus.REJECTED, reason_code="not_civil")
    assert outcome_of(rejected) == ("failed", {"route": "rejected", "reason": "not_civil"})
    assert outcome_of(
        CaseWithdrawn(**base, status=CaseStatus.WITHDRAWN, previous_status=CaseStatus.ACCEPTED)
    ) == ("withdrawn", {})


# -- timers ----------------------------------------------------------------------------------


def test_every_due_timer_of_a_subject_fires_in_one_change_in_order() -> None:
    doc = referral()
    assert due_keys(doc, T0) == [] and fire_due(doc, now=T0, escalate_to=[]) is None
    late = T0 + timedelta(days=4)
    assert due_keys(doc, late) == ["response-remind", "response-overdue"]
    before = doc.model_copy(deep=True)
    effects = fire_due(doc, now=late, escalate_to=["org-centre"])
    assert [type(e.data).__name__ for e in effects or []] == ["DeadlineReminded", "DeadlineOverdue"]
    assert doc.overdue_stages == ["response"] and effects and effects[1].data.escalated_to == ["org-centre"]  # type: ignore[attr-defined]
    assert [t.action for t in fired_between(before, doc)] == ["remind", "overdue"]
    assert fire_due(doc, now=late, escalate_to=[]) is None  # fired already
    assert fired_between(doc, doc) == []


def test_an_old_index_entry_is_adopted_by_reindexing_only_when_needed() -> None:
    doc = referral()
    assert reindexed(doc, T0) == []  # stored before timer_day existed
    doc.timer_day = timer_day(doc, T0)
    assert reindexed(doc, T0) is None
