"""What reading intake's case topic costs the database: commands per case event of cases
nobody referred (most cases), counted by the client's command listener."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.referral.conftest import COMMITTEE, T0, Factory, registered
from tests.support.data import COUNTY
from tiaojie.contracts.common import CaseStatus
from tiaojie.contracts.intake import (
    CaseAccepted,
    CaseArchived,
    CaseAssignmentRecorded,
    CaseResolved,
    DeadlineChanged,
    SessionRecorded,
)
from tiaojie.referral.app import Referral
from tiaojie.referral.projections import CaseInput
from tiaojie.runtime.clock import ManualClock

pytestmark = pytest.mark.integration


def life_of(case_id: str) -> list[CaseInput]:
    """A case's usual events, from its registration to its archiving."""
    base = {"case_id": case_id, "county": COUNTY, "organisation_id": COMMITTEE, "at": T0 + timedelta(hours=1)}
    return [
        registered(case_id),
        CaseAccepted(**base, status=CaseStatus.ACCEPTED, case_number="(2026)1号", mediation_due=T0),
        CaseAssignmentRecorded(**base, status=CaseStatus.ASSIGNED, mediator_id="med-1"),
        SessionRecorded(**base, status=CaseStatus.IN_MEDIATION, session_number=1, held_at=T0),
        DeadlineChanged(**base, status=CaseStatus.IN_MEDIATION, clock="mediation", change="extended"),
        CaseResolved(**base, status=CaseStatus.RESOLVED, agreement_form="oral"),
        CaseArchived(**base, status=CaseStatus.ARCHIVED),
    ]


def commands(parts: Referral) -> float:
    """Database commands the process sent so far."""
    return sum(
        sample.value
        for metric in parts.host.registry.collect()
        if metric.name == "tiaojie_db_commands"
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


async def test_case_events_of_unreferred_cases_cost_few_commands(make_referral: Factory, unique: str) -> None:
    parts = await make_referral(ManualClock(T0))
    lives = [life_of(f"case-{unique}-{n}") for n in range(20)]
    # Interleaved as a partition holds them (each case's events in order), in batches of 35.
    stream = [event for step in zip(*lives, strict=True) for event in step]
    before = commands(parts)
    for start in range(0, len(stream), 35):
        await parts.service.on_case_events(events=stream[start : start + 35])
    per_event = (commands(parts) - before) / len(stream)
    print(f"commands per case event: {per_event:.2f}")
    # One event at a time, projecting every event, this cost 5.4 commands per event.
    assert per_event < 1.75
    redelivered = commands(parts)
    # Kafka redelivers from the last committed offset on: the last batch again changes nothing.
    await parts.service.on_case_events(events=stream[-35:])
    # Each case read; the referrals and transfers of the 15 cases the batch ends looked up by
    # index (two lookups and one: fewer cases than SCAN_FROM, where one scan each would do).
    assert commands(parts) - redelivered == 20 + 15 * 3
    projected = await parts.repository.get_case(f"case-{unique}-0")
    assert projected is not None and projected.ended
