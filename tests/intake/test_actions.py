"""The mediator's actions as pure rules: no database, no broker, no HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tiaojie.contracts.common import CaseStatus, Category, Channel
from tiaojie.contracts.intake import CaseRejected, DeadlineChanged
from tiaojie.intake import actions
from tiaojie.intake.acceptance import accepted
from tiaojie.intake.models import CaseDoc, MediationClock
from tiaojie.intake.transitions import next_state
from tiaojie.runtime.errors import Conflict, Invalid

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def case(**fields: object) -> CaseDoc:
    base: dict[str, object] = {
        "_id": "c1",
        "tracking_code": "ABCDEFGHJK",
        "status": CaseStatus.RECEIVED,
        "channel": Channel.DESK,
        "county": "371302",
        "category": Category.NEIGHBOURHOOD,
        "description": "邻里纠纷",
        "parties": [],
        "received_at": NOW - timedelta(days=1),
        "registered_by": "desk",
    }
    return CaseDoc.model_validate(base | fields)


def test_rejection_needs_a_listed_reason_and_a_case_not_being_accepted() -> None:
    with pytest.raises(Invalid):
        actions.check_rejection("because")
    change = actions.reject(case(), NOW, by="desk", reason_code="in_litigation", reason_text="")
    assert change.status == CaseStatus.REJECTED
    assert change.events == [
        (CaseRejected, {"reason_code": "in_litigation", "reason_text": "已经进入诉讼程序"})
    ]
    with pytest.raises(Conflict):
        actions.reject(case(accept_pending=True), NOW, by="desk", reason_code="other", reason_text="")


def test_a_paused_clock_adds_the_time_it_stood_still_and_extends_only_once() -> None:
    running = case(
        status=CaseStatus.IN_MEDIATION,
        clock=MediationClock(started_at=NOW - timedelta(days=3), due=NOW + timedelta(days=27)),
    )
    paused = next_state(running, actions.pause_clock(running, NOW, reason="鉴定"), entries=[], action_id="p")
    later = NOW + timedelta(days=2)
    resumed_change = actions.resume_clock(paused, later)
    resumed = next_state(paused, resumed_change, entries=[], action_id="r")
    assert resumed.clock is not None and resumed.clock.due == NOW + timedelta(days=29)
    assert resumed_change.events[0][0] is DeadlineChanged
    with pytest.raises(Conflict):
        actions.resume_clock(resumed, later)
    extended = next_state(
        resumed,
        actions.extend_clock(resumed, later, by="m", days=10, consent_record="双方签字"),
        entries=[],
        action_id="e",
    )
    with pytest.raises(Conflict):
        actions.extend_clock(extended, later, by="m", days=5, consent_record="再次")


def test_an_incomplete_file_is_not_archived() -> None:
    visited = case(status=CaseStatus.FOLLOWED_UP)
    with pytest.raises(Conflict, match="case file is incomplete"):
        actions.archive(visited, NOW)


def test_acceptance_with_a_mediator_chosen_before_it_is_assigned_at_once() -> None:
    intent = {
        "at": NOW,
        "by": "desk",
        "action_id": "a1",
        "year": 2026,
        "short_name": "临兰",
        "counter": "o:2026",
    }
    plain, events = accepted(
        case(organisation_id="o"), intent, number="(2026)临兰人调字第1号", mediation_days=30
    )
    assert plain.status == CaseStatus.ACCEPTED and [e.type for _, e in events] == [
        "tiaojie.intake.CaseAccepted"
    ]
    assert plain.clock is not None and plain.clock.due == NOW + timedelta(days=30)
    pre = case(
        organisation_id="o",
        assignment={
            "mediator_id": "m1",
            "organisation_id": "o",
            "assigned_at": NOW,
            "reason": "就近",
            "mediator_name": "王调解",
        },
        mediator_id="m1",
    )
    assigned, events = accepted(pre, intent, number="(2026)临兰人调字第2号", mediation_days=30)
    assert assigned.status == CaseStatus.ASSIGNED and len(events) == 2
    assert assigned.applied == ["a1"] and assigned.version == 2
