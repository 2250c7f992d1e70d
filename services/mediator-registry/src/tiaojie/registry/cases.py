"""The registry's record of a case: one aggregate of the storage engine per case.

Its state holds what assignment needs to know (county, category, risk level, party keys,
the organisation it is routed to), who holds it (`holder`, with the `token` of that
mediator's reservation in their load ledger), the decisions under way (`pending`: one
plan per decision id, naming the mediator and the reservation's token, so that a
redelivered trigger completes the plan a crashed writer left instead of deciding again),
the ids of the decisions applied (`applied`: a redelivered trigger changes nothing),
the latest decision as recorded for the audit (`decision`), and the reservations the
latest change ended (`prior`), which its writer releases from the ledgers.

A decision therefore takes three steps, each a claimed revision of one aggregate: the plan
(`intend`, which also records what the trigger says about the case: its facts, or for a
transfer its move to the receiving organisation, the holder released), the reservation in
the chosen mediator's ledger (a batch's reservations of one mediator in one revision), and
the decision itself (`conclude`, which publishes the event). The plan is the commit point that makes a
reservation releasable: a token that is neither the holder's nor a pending plan's can
never become the holder's again. These are pure decisions (the state plus their input).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tiaojie.contracts.envelope import CloudEvent
from tiaojie.registry.ledger import legacy_token
from tiaojie.runtime.mongo import Document
from tiaojie.runtime.revisions import Change, Decide

Ref = tuple[str, str]  # (mediator id, reservation token)
# Builds the decision record and its event from the case's state and the plan (None for a
# failed decision): its number and the previous mediator come from the state decided on.
Record = Callable[[Document, Document | None], tuple[Document, tuple[str, CloudEvent]]]


def new_case(case_id: str) -> Document:
    return {"_id": case_id, "seq": 0, "closed": False, "holder": None, "applied": [], "pending": []}


def token_of(state: Mapping[str, Any]) -> str:
    """The holder's reservation (cases assigned before ledgers existed have a legacy one)."""
    return str(state.get("token") or legacy_token(str(state["_id"])))


def references(state: Mapping[str, Any] | None) -> set[Ref]:
    """Every reservation the case refers to: its holder's and its pending plans'."""
    if not state:
        return set()
    refs = {(str(p["mediator_id"]), str(p["token"])) for p in state.get("pending") or []}
    if state.get("holder"):
        refs.add((str(state["holder"]), token_of(state)))
    return refs


def prior_of(state: Mapping[str, Any] | None) -> list[Ref]:
    return [(str(p["mediator_id"]), str(p["token"])) for p in (state or {}).get("prior") or []]


def applied(state: Mapping[str, Any] | None, decision_id: str) -> bool:
    return decision_id in ((state or {}).get("applied") or [])


def plan_of(state: Mapping[str, Any] | None, decision_id: str) -> Document | None:
    """The pending plan of a decision, if one is under way."""
    return next((p for p in (state or {}).get("pending") or [] if p["decision_id"] == decision_id), None)


def _changed(
    case_id: str,
    before: Document | None,
    fields: Document,
    events: list[tuple[str, CloudEvent]] | None = None,
) -> Change:
    """The next state, with `prior`: the reservations it no longer refers to."""
    after = {**(before or new_case(case_id)), **fields}
    ended = sorted(references(before) - references(after))
    after["prior"] = [{"mediator_id": m, "token": t} for m, t in ended]
    return Change(after, events or [])


def intend(*, case_id: str, plan: Document, facts: Document) -> Decide:
    """Record the plan of a decision (None: applied, closed, or another writer's plan for
    the same decision is under way, which the caller then completes). Every plan has a
    token of its own, never used again once the plan is dropped."""

    def decide(state: Document | None) -> Change | None:
        decision_id = plan["decision_id"]
        if applied(state, decision_id) or (state or {}).get("closed") or plan_of(state, decision_id):
            return None
        pending = (state or {}).get("pending") or []
        return _changed(case_id, state, {**facts, "pending": [*pending, plan]})

    return decide


def conclude(*, case_id: str, decision_id: str, token: str, record: Record) -> Decide:
    """Make the planned decision the case's current one, with its event (None unless the
    plan with this token is still pending on an open case)."""

    def decide(state: Document | None) -> Change | None:
        if state is None or applied(state, decision_id) or state.get("closed"):
            return None
        plan = plan_of(state, decision_id)
        if plan is None or plan["token"] != token:
            return None
        doc, event = record(state, plan)
        fields = {
            "holder": plan["mediator_id"],
            "token": token,
            "mediator_id": plan["mediator_id"],
            "organisation_id": plan["organisation_id"],
            "seq": doc["seq"],
            "decision_id": decision_id,
            "assigned_at": doc["at"],
            "applied": [*(state.get("applied") or []), decision_id],
            "decision": doc,
            "pending": [p for p in state.get("pending") or [] if p["decision_id"] != decision_id],
        }
        return _changed(case_id, state, fields, [event])

    return decide


def conclude_failed(
    *, case_id: str, decision_id: str, organisation_id: str | None, facts: Document, record: Record
) -> Decide:
    """Record that nobody could take the case (None if applied, closed, or a plan for the
    same decision is under way: a concurrent writer found someone)."""

    def decide(state: Document | None) -> Change | None:
        if applied(state, decision_id) or (state or {}).get("closed") or plan_of(state, decision_id):
            return None
        doc, event = record(state or new_case(case_id), None)
        fields = {
            **facts,
            "holder": None,
            "token": None,
            "mediator_id": None,
            **({"organisation_id": organisation_id} if organisation_id else {}),
            "seq": doc["seq"],
            "decision_id": decision_id,
            "assigned_at": doc["at"],
            "applied": [*((state or {}).get("applied") or []), decision_id],
            "decision": doc,
        }
        return _changed(case_id, state, fields, [event])

    return decide


def abandon(*, case_id: str, token: str) -> Decide:
    """Drop a plan that can no longer complete (its mediator is full, or its writer is gone)."""

    def decide(state: Document | None) -> Change | None:
        pending = (state or {}).get("pending") or []
        if not any(p["token"] == token for p in pending):
            return None
        return _changed(case_id, state, {"pending": [p for p in pending if p["token"] != token]})

    return decide


def close(*, case_id: str, status: str, at: Any) -> Decide:
    """The case ended: nobody holds it and no plan can complete any more."""

    def decide(state: Document | None) -> Change | None:
        if (state or {}).get("closed"):
            return None
        fields = {"closed": True, "closed_status": status, "closed_at": at}
        return _changed(case_id, state, {**fields, "holder": None, "token": None, "pending": []})

    return decide


def remember(*, case_id: str, facts: Document) -> Decide:
    """Keep what assignment needs to know about a known case (None if nothing changed)."""

    def decide(state: Document | None) -> Change | None:
        if state is None or all(state.get(k) == v for k, v in facts.items()):
            return None
        return _changed(case_id, state, facts)

    return decide
