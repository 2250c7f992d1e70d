"""The projection rules and figures on a scripted history with hand-computed values:
idempotent under duplicates, independent of the order across topics."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.stats.history import EXPECTED, EXPECTED_REFERRALS, NOW, history
from tiaojie.contracts.envelope import EventData
from tiaojie.stats import figures
from tiaojie.stats.handlers import HANDOVER_EVENTS, handover_id, subscriptions
from tiaojie.stats.projection import apply_case_event, apply_handover_event

pytestmark = pytest.mark.unit


def project(events: list[tuple[str, str, EventData]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The documents the rules make of a stream (events stats does not read left out)."""
    cases: dict[str, Any] = {}
    handovers: dict[str, Any] = {}
    read = subscriptions()
    for topic, _key, data in events:
        if not isinstance(data, read[topic]):
            continue
        if isinstance(data, HANDOVER_EVENTS):
            hid = handover_id(data)
            handovers[hid] = apply_handover_event(handovers.get(hid), data)
        else:
            cid = data.case_id  # type: ignore[attr-defined]
            cases[cid] = apply_case_event(cases.get(cid), data)
    return cases, handovers


def figures_of(cases: dict[str, Any], handovers: dict[str, Any]) -> dict[str, Any]:
    period = figures.Period()
    return {
        **figures.case_figures(cases.values(), period),
        **figures.backlog_figures(cases.values(), NOW),
        "referrals": figures.referral_figures(handovers.values(), period)["by_agency_kind"],
    }


def test_scripted_history_gives_the_hand_computed_figures() -> None:
    got = figures_of(*project(history()))
    for key, value in EXPECTED.items():
        assert got[key] == pytest.approx(value), key
    assert got["referrals"] == EXPECTED_REFERRALS


def test_duplicates_and_any_cross_topic_order_give_the_same_documents() -> None:
    events = history()
    expected = project(events)
    rng = random.Random(5)
    for _ in range(20):
        # Kafka keeps the order of one key on one topic; across topics anything goes, and
        # a redelivery repeats a suffix of what was seen.
        by_stream: dict[tuple[str, str], list[tuple[str, str, EventData]]] = {}
        for item in events:
            by_stream.setdefault((item[0], item[1]), []).append(item)
        streams = [list(s) for s in by_stream.values()]
        merged: list[tuple[str, str, EventData]] = []
        while streams:
            stream = rng.choice(streams)
            merged.append(stream.pop(0))
            if rng.random() < 0.2:
                merged.append(merged[-1])  # redelivered
            if not stream:
                streams.remove(stream)
        replay = merged[: rng.randrange(len(merged))]
        assert project(merged + replay) == expected


def test_quantiles_interpolate_linearly() -> None:
    assert figures.quantile([1, 2, 3, 10], 0.5) == 2.5
    assert figures.quantile([1, 2, 3, 10], 0.9) == pytest.approx(7.9)
    assert figures.quantile([], 0.5) is None
    assert figures.quantile([4], 0.9) == 4


def test_a_period_counts_flows_on_the_days_they_happened() -> None:
    from datetime import date

    cases, _ = project(history())
    march = figures.case_figures(cases.values(), figures.Period(date(2026, 3, 1), date(2026, 3, 31)))
    # c3's resolution (T0 + 40 d - 2 h = 10 April local) falls outside March.
    assert march["resolved"] == 1 and march["failed"] == 1 and march["received"] == 8
    assert march["time_to_resolve_seconds"]["count"] == 2


def _assignment_story() -> tuple[list[EventData], datetime, datetime]:
    """A case the registry proposed a mediator for at registration, accepted a day later and
    then recorded as assigned by intake."""
    from tiaojie.contracts.common import CaseStatus, Category, Channel
    from tiaojie.contracts.intake import CaseAccepted, CaseAssignmentRecorded, CaseRegistered
    from tiaojie.contracts.registry import MediatorAssigned

    t0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    place = {"county": "371399", "township": "371399001", "organisation_id": "org-371399001-tc"}
    accepted, recorded = t0 + timedelta(days=1), t0 + timedelta(days=1, hours=3)
    events: list[EventData] = [
        CaseRegistered(
            case_id="a-1",
            channel=Channel.DESK,
            category=Category.NEIGHBOURHOOD,
            received_at=t0,
            **place,
        ),
        MediatorAssigned(
            case_id="a-1",
            county=place["county"],
            organisation_id=place["organisation_id"],
            mediator_id="med-proposed",
            mediator_name="调解员",
            score=1.0,
            assigned_at=t0 + timedelta(minutes=1),
        ),
        CaseAccepted(
            case_id="a-1",
            status=CaseStatus.ACCEPTED,
            at=accepted,
            case_number="(2026)测人调字第1号",
            mediation_due=accepted + timedelta(days=30),
            **place,
        ),
        CaseAssignmentRecorded(
            case_id="a-1", status=CaseStatus.ASSIGNED, at=recorded, mediator_id="med-assigned", **place
        ),
    ]
    return events, accepted, recorded


def _tagged(events: list[EventData]) -> list[tuple[str, str, EventData]]:
    from tiaojie.contracts import topics
    from tiaojie.contracts.registry import MediatorAssigned

    return [
        (topics.ASSIGNMENTS if isinstance(e, MediatorAssigned) else topics.CASES, "a-1", e) for e in events
    ]


def test_a_case_is_assigned_when_intake_records_it_not_when_the_registry_proposes() -> None:
    events, accepted, recorded = _assignment_story()
    cases, _ = project(_tagged(events))
    case = cases["a-1"]
    assert case["assigned_at"] == recorded and case["mediator_id"] == "med-assigned"
    assert case["assigned_at"] >= accepted  # acceptance to assignment is never negative
    # The registry's proposal alone marks nothing: stats does not read it.
    from tiaojie.contracts import topics
    from tiaojie.contracts.registry import AssignmentFailed, MediatorAssigned

    assert subscriptions()[topics.ASSIGNMENTS] == (AssignmentFailed,)
    proposed_only, _ = project(_tagged(events[:3]))
    assert proposed_only["a-1"].get("assigned_at") is None
    assert figures.case_figures(proposed_only.values(), figures.Period())["assigned"] == 0
    assert not any(MediatorAssigned in models for models in subscriptions().values())


def test_a_projection_stored_before_holds_the_proposal_until_intake_records_the_assignment() -> None:
    from tiaojie.stats.models import CaseFacts

    events, _accepted, recorded = _assignment_story()
    registered, proposed, accepted_event, assignment = events
    # As the earlier rule stored it: the registry's time and mediator, no mark.
    legacy = apply_case_event(apply_case_event(None, registered), accepted_event)
    legacy |= {"_id": "a-1", "rev": 3, "assigned_at": proposed.assigned_at, "mediator_id": "med-proposed"}  # type: ignore[attr-defined]
    legacy["assignment_failed"] = False
    assert CaseFacts.model_validate(legacy).assigned_at == proposed.assigned_at  # type: ignore[attr-defined]
    continued = apply_case_event(legacy, assignment)
    assert continued["assigned_at"] == recorded and continued["mediator_id"] == "med-assigned"
    assert apply_case_event(continued, assignment) == continued  # a redelivery changes nothing
    # A later reassignment keeps the first assignment's time and mediator.
    later = assignment.model_copy(update={"at": recorded + timedelta(days=2), "mediator_id": "med-2"})
    assert apply_case_event(continued, later)["mediator_id"] == "med-assigned"


def test_a_replayed_registration_never_lowers_a_raised_risk() -> None:
    from tiaojie.contracts.common import CaseStatus, RiskLevel
    from tiaojie.contracts.intake import RiskRaised

    events, *_ = _assignment_story()
    registered = events[0]
    raised = RiskRaised(
        case_id="a-1",
        county="371399",
        status=CaseStatus.RECEIVED,
        at=registered.received_at + timedelta(hours=1),  # type: ignore[attr-defined]
        risk_level=RiskLevel.GRAVE,
        signals=["violence"],
    )
    doc = apply_case_event(apply_case_event(None, registered), raised)
    assert apply_case_event(doc, registered)["risk_level"] == RiskLevel.GRAVE


def test_a_batchs_alert_changes_are_one_decision_raises_before_clears() -> None:
    from tiaojie.stats.service import AlertPlan

    plan = AlertPlan()
    alert = "grave_risk:c-1"
    # Handled one by one, every event of a closed case raises first and then clears.
    plan.clear(alert, {"status": "cleared"}, "cleared")
    plan.add({"_id": alert, "status": "active", "related": {}}, "raised")
    plan.add({"_id": alert, "status": "active", "related": {"c-0": {"case_id": "c-0"}}}, "raised again")

    def events_of(event: str) -> list[tuple[str, str]]:
        return [("stats.alerts.v1", event)]

    decide = plan.decision(alert, events_of)
    change = decide(None)
    assert change is not None
    assert change.state["status"] == "cleared" and list(change.state["related"]) == ["c-0"]
    assert [e for _, e in change.events] == ["raised", "cleared"]  # each announced once
    assert decide(change.state) is None  # redelivered: nothing to do
    listed = {"_id": alert, "status": "active", "related": {}}
    merged = AlertPlan()
    merged.add({**listed, "related": {"c-2": {"case_id": "c-2"}}}, "raised")
    grown = merged.decision(alert, events_of)(listed)
    assert grown is not None and list(grown.state["related"]) == ["c-2"] and not grown.events
