"""The agency integration guide cannot drift from the contract: every example event in
docs/agency-integration.md parses as a CloudEvent of a registered type, one per type."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tiaojie.contracts.envelope import CloudEvent
from tiaojie.contracts.referral import AGENCY_NOTICES, AgencyReferralSubmitted
from tiaojie.referral.deadlines import DeadlineRules
from tiaojie.referral.settings import ReferralSettings
from tiaojie.runtime.calendar import default_calendar

pytestmark = pytest.mark.unit

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "agency-integration.md"


def examples() -> list[CloudEvent]:
    blocks = re.findall(r"```json\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.S)
    return [CloudEvent.model_validate(json.loads(block)) for block in blocks]


def test_one_valid_example_per_event_type() -> None:
    events = examples()
    types = [e.type for e in events]
    wanted = [AgencyReferralSubmitted.event_type, *(m.event_type for m in AGENCY_NOTICES)]
    assert sorted(types) == sorted(wanted)
    for event in events:
        payload = event.payload()
        assert payload.event_type == event.type
        ref = getattr(payload, "agency_ref", None)
        assert event.subject == ref  # keyed and subject-ed by the agency's own reference


def test_the_deadlines_in_the_examples_are_the_rules() -> None:
    rules = DeadlineRules(ReferralSettings(), default_calendar())
    by_type = {e.type: e for e in examples()}
    received = by_type["tiaojie.agency.AgencyReferralReceived"].payload()
    accepted = by_type["tiaojie.agency.AgencyReferralAccepted"].payload()
    extended = by_type["tiaojie.agency.AgencyReferralExtended"].payload()
    assert received.response_due == rules.response_due(received.at)  # type: ignore[attr-defined]
    assert accepted.due == rules.handling_due("delegation", accepted.at)  # type: ignore[attr-defined]
    assert extended.due == rules.extended_due(  # type: ignore[attr-defined]
        "delegation",
        due=accepted.due,
        days=30,
        by_agreement=True,
        extensions_so_far=0,  # type: ignore[attr-defined]
    )
