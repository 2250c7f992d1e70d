"""The projection rules and figures on a scripted history with hand-computed values:
idempotent under duplicates, independent of the order across topics."""

from __future__ import annotations

import random
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
