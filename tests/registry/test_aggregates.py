"""The pure decisions of the registry's aggregates, without servers: a mediator's load
ledger (capacity, a case counted once, releases) and a case (plans, conclusions, the
reservations each change ends)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from tiaojie.registry import cases, ledger
from tiaojie.runtime.revisions import Change, Decide

pytestmark = pytest.mark.unit

TODAY = date(2026, 3, 2)
SINCE = date(2025, 12, 3)
AT = datetime(2026, 3, 2, 9, tzinfo=UTC)


def run(decide: Decide, state: dict[str, Any] | None) -> dict[str, Any] | None:
    """The next state a decision makes (None: nothing to do)."""
    change = decide(state)
    assert change is None or isinstance(change, Change)
    return None if change is None else {**change.state, "version": (state or {}).get("version", 0) + 1}


def acquire(token: str, case_id: str, capacity: int | None = 2, today: date = TODAY) -> Decide:
    return ledger.acquire(token=token, case_id=case_id, capacity=capacity, today=today, since=SINCE, at=AT)


def test_a_ledger_refuses_beyond_capacity_and_counts_a_case_once() -> None:
    state = run(acquire("t1", "c1"), None)
    state = run(acquire("t2", "c2"), state)
    assert ledger.cases_held(state) == {"c1", "c2"} and ledger.received(state, since=SINCE) == 2
    assert run(acquire("t3", "c3"), state) is None  # full
    assert run(acquire("t2", "c2"), state) is None  # this reservation is there already
    again = run(acquire("t4", "c1"), state)  # another decision for a case it holds: no room needed
    assert ledger.cases_held(again) == {"c1", "c2"} and ledger.received(again, since=SINCE) == 2
    forced = run(acquire("t5", "c3", capacity=None), state)  # a manual override
    assert ledger.cases_held(forced) == {"c1", "c2", "c3"}
    assert ledger.cases_held(state, except_case="c1") == {"c2"}


def test_a_release_drops_one_reservation_and_a_revoked_one_its_grant() -> None:
    state = run(acquire("t1", "c1"), None)
    state = run(acquire("t2", "c2"), state)
    released = run(ledger.release_many(tokens=["t1"], since=SINCE), state)
    assert ledger.cases_held(released) == {"c2"} and ledger.received(released, since=SINCE) == 2
    revoked = run(ledger.release_many(tokens=["t2"], since=SINCE, revoke_grant=True), state)
    assert ledger.cases_held(revoked) == {"c1"} and ledger.received(revoked, since=SINCE) == 1
    assert run(ledger.release_many(tokens=["gone"], since=SINCE), state) is None


def test_the_fairness_window_is_pruned_on_write() -> None:
    old = run(acquire("t1", "c1", today=date(2025, 11, 1)), None)
    assert ledger.received(old, since=SINCE) == 0
    state = run(acquire("t2", "c2"), old)
    assert state is not None and list(state["received"]) == [TODAY.isoformat()]


def plan(decision_id: str, token: str, mediator_id: str = "m1") -> dict[str, Any]:
    return {"decision_id": decision_id, "token": token, "mediator_id": mediator_id, "organisation_id": "tc"}


def record(state: dict[str, Any], p: dict[str, Any] | None) -> Any:
    doc = {"_id": p["decision_id"] if p else "failed", "seq": state.get("seq", 0) + 1, "at": AT}
    return doc, ("registry.assignments.v1", object())


def test_a_plan_is_concluded_only_with_its_token_and_only_once() -> None:
    state = run(cases.intend(case_id="c", plan=plan("d1", "t1"), facts={"county": "371302"}), None)
    assert state is not None and state["county"] == "371302" and cases.references(state) == {("m1", "t1")}
    # A second writer of the same decision joins the plan instead of replacing it.
    assert run(cases.intend(case_id="c", plan=plan("d1", "t2", "m2"), facts={}), state) is None
    assert run(cases.conclude(case_id="c", decision_id="d1", token="t2", record=record), state) is None
    done = run(cases.conclude(case_id="c", decision_id="d1", token="t1", record=record), state)
    assert done is not None and done["holder"] == "m1" and done["pending"] == [] and done["seq"] == 1
    assert run(cases.conclude(case_id="c", decision_id="d1", token="t1", record=record), done) is None
    assert run(cases.intend(case_id="c", plan=plan("d1", "t3"), facts={}), done) is None  # applied


def test_every_change_names_the_reservations_it_ends() -> None:
    state = run(cases.intend(case_id="c", plan=plan("d1", "t1"), facts={}), None)
    state = run(cases.conclude(case_id="c", decision_id="d1", token="t1", record=record), state)
    state = run(cases.intend(case_id="c", plan=plan("d2", "t2", "m2"), facts={}), state)
    assert cases.references(state) == {("m1", "t1"), ("m2", "t2")} and cases.prior_of(state) == []
    moved = run(cases.conclude(case_id="c", decision_id="d2", token="t2", record=record), state)
    assert moved is not None and moved["holder"] == "m2" and cases.prior_of(moved) == [("m1", "t1")]
    closed = run(cases.close(case_id="c", status="resolved", at=AT), moved)
    assert closed is not None and closed["holder"] is None and cases.prior_of(closed) == [("m2", "t2")]
    assert run(cases.close(case_id="c", status="resolved", at=AT), closed) is None
    assert run(cases.intend(case_id="c", plan=plan("d3", "t3"), facts={}), closed) is None


def test_a_full_mediator_or_a_lost_writer_drops_its_plan() -> None:
    state = run(cases.intend(case_id="c", plan=plan("d1", "t1"), facts={}), None)
    dropped = run(cases.abandon(case_id="c", token="t1"), state)
    assert dropped is not None and dropped["pending"] == [] and cases.prior_of(dropped) == [("m1", "t1")]
    assert run(cases.abandon(case_id="c", token="t1"), dropped) is None
    # With no plan pending, a search that found nobody records the failure.
    failed = run(
        cases.conclude_failed(case_id="c", decision_id="d1", organisation_id="tc", facts={}, record=record),
        dropped,
    )
    assert failed is not None and failed["holder"] is None and failed["applied"] == ["d1"]
    assert (
        run(
            cases.conclude_failed(
                case_id="c", decision_id="d2", organisation_id="tc", facts={}, record=record
            ),
            state,  # d2 has no plan, but a plan of d1 is no obstacle
        )
        is not None
    )


def test_a_case_held_before_ledgers_refers_to_its_legacy_reservation() -> None:
    old = {"_id": "c-old", "holder": "m1", "version": 0}
    assert cases.references(old) == {("m1", ledger.legacy_token("c-old"))}
    closed = run(cases.close(case_id="c-old", status="resolved", at=AT), old)
    assert cases.prior_of(closed) == [("m1", "legacy:c-old")]
