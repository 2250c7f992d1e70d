"""A mediator's load ledger: one aggregate of the storage engine per mediator.

Load and fairness are shared by every case an organisation assigns, so they are kept
where one writer at a time can change them: the mediator's own ledger (collection
`loads`), written only through `Revisions`. Its state holds

* `held`: one reservation per decision that gave the mediator a case (`token`, `case_id`,
  `at`, and the `day` it counted as received, if it did); the load is the number of
  distinct cases held, so a reservation repeated for the same case never counts twice;
* `received`: cases given to the mediator per day, pruned to the fairness window on every
  write (a reservation for a case the mediator already holds is not counted again).

A reservation is taken before the case records its holder, and released only once the
case can no longer refer to its token: so a case's holder is always counted in that
holder's ledger (a capacity is never exceeded), and what a crash can leave behind is a
reservation too many, which the next change of the case or the periodic audit releases.
These are pure decisions (`tiaojie.runtime.revisions.Decide`): the state they get plus
their input, nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime

from tiaojie.runtime.mongo import Document
from tiaojie.runtime.revisions import Change, Decide

# The token of a reservation held before the registry kept ledgers (see recovery.migrate).
LEGACY = "legacy:"


def legacy_token(case_id: str) -> str:
    return f"{LEGACY}{case_id}"


def entries(ledger: Document | None) -> list[Document]:
    return list((ledger or {}).get("held") or [])


def holds(ledger: Document | None, token: str) -> bool:
    return any(e["token"] == token for e in entries(ledger))


def cases_held(ledger: Document | None, *, except_case: str | None = None) -> set[str]:
    """The distinct cases a ledger holds (the mediator's load), without `except_case`."""
    return {e["case_id"] for e in entries(ledger) if e["case_id"] != except_case}


def received(ledger: Document | None, *, since: date) -> int:
    """Cases given to the mediator since a day (the fairness window)."""
    first = since.isoformat()
    return sum(n for day, n in ((ledger or {}).get("received") or {}).items() if day >= first)


def _window(ledger: Document, *, since: date) -> dict[str, int]:
    first = since.isoformat()
    return {day: n for day, n in (ledger.get("received") or {}).items() if day >= first and n > 0}


def acquire(
    *, token: str, case_id: str, capacity: int | None, today: date, since: date, at: datetime
) -> Decide:
    """Reserve a place for a case (None: already reserved, or the mediator is full;
    `capacity` None overrides the limit)."""
    return lambda ledger: _acquire(
        ledger, token=token, case_id=case_id, capacity=capacity, today=today, since=since, at=at
    )


def _acquire(
    ledger: Document | None,
    *,
    token: str,
    case_id: str,
    capacity: int | None,
    today: date,
    since: date,
    at: datetime,
) -> Change | None:
    state: Document = ledger or {"held": [], "received": {}}
    if holds(state, token):
        return None
    cases = cases_held(state)
    if case_id not in cases and capacity is not None and len(cases) >= capacity:
        return None
    received = _window(state, since=since)
    day = None if case_id in cases else today.isoformat()
    if day is not None:
        received[day] = received.get(day, 0) + 1
    held = [*entries(state), {"token": token, "case_id": case_id, "at": at, "day": day}]
    return Change({**state, "held": held, "received": received})


def acquire_many(*, places: Sequence[Document], today: date, since: date, at: datetime) -> Decide:
    """Reserve places for several cases in turn (`token`, `case_id`, `capacity` each), as
    `acquire` would one after the other: a batch's reservations of one mediator in one
    revision. None if none was taken (all reserved already, or the mediator is full)."""

    def decide(ledger: Document | None) -> Change | None:
        state, taken = ledger, None
        for place in places:
            change = _acquire(
                state,
                token=place["token"],
                case_id=place["case_id"],
                capacity=place.get("capacity"),
                today=today,
                since=since,
                at=at,
            )
            if change is not None:
                state, taken = change.state, change
        return taken

    return decide


def release_many(*, tokens: Iterable[str], since: date, revoke_grant: bool = False) -> Decide:
    """Drop reservations the cases no longer refer to, a mediator's in one revision (None
    if none is held); with `revoke_grant`, also the cases they counted as received (the
    reservations never became their cases' holders)."""
    wanted = sorted(set(tokens))

    def decide(ledger: Document | None) -> Change | None:
        state, freed = ledger, None
        for token in wanted:
            change = _release(state, token=token, since=since, revoke_grant=revoke_grant)
            if change is not None:
                state, freed = change.state, change
        return freed

    return decide


def _release(ledger: Document | None, *, token: str, since: date, revoke_grant: bool) -> Change | None:
    if ledger is None or not holds(ledger, token):
        return None
    (entry,) = [e for e in entries(ledger) if e["token"] == token]
    received = _window(ledger, since=since)
    if revoke_grant and entry.get("day") in received:
        received[entry["day"]] -= 1
    held = [e for e in entries(ledger) if e["token"] != token]
    return Change({**ledger, "held": held, "received": {d: n for d, n in received.items() if n > 0}})


def merge_legacy(*, held: Iterable[str], granted: Iterable[tuple[str, str]], at: datetime) -> Decide:
    """Add what a mediator held and was given before ledgers existed (once: a ledger that
    has legacy reservations already is left as it is)."""

    def decide(ledger: Document | None) -> Change | None:
        state: Document = ledger or {"held": [], "received": {}}
        if any(str(e["token"]).startswith(LEGACY) for e in entries(state)) or state.get("legacy"):
            return None
        received = dict(state.get("received") or {})
        for _, day in set(granted):
            received[day] = received.get(day, 0) + 1
        old = [{"token": legacy_token(c), "case_id": c, "at": at, "day": None} for c in sorted(set(held))]
        return Change({**state, "held": [*entries(state), *old], "received": received, "legacy": True})

    return decide
