"""The CloudEvents envelope and the event registry."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from pydantic import ValidationError

from tiaojie.contracts import EVENT_TYPES, topics
from tiaojie.contracts.common import Category, Channel
from tiaojie.contracts.envelope import UnknownEventType, decode_event, derived_id, new_event
from tiaojie.contracts.intake import CaseRegistered, DisputeSubmitted

pytestmark = pytest.mark.unit


def registered(case_id: str = "c1") -> CaseRegistered:
    return CaseRegistered(
        case_id=case_id,
        channel=Channel.DESK,
        county="371302",
        category=Category.CONTRACT,
        received_at=datetime(2026, 3, 2, tzinfo=UTC),
    )


def test_round_trip_keeps_every_attribute() -> None:
    event = new_event(registered(), source="/tiaojie/intake", subject="c1", county="371302")
    decoded = decode_event(event.to_bytes())
    assert decoded == event
    assert decoded.specversion == "1.0"
    assert decoded.payload() == registered()


def test_structured_json_has_cloudevents_attributes() -> None:
    doc = orjson.loads(new_event(registered(), source="/s", subject="c1", county="371302").to_bytes())
    assert {
        "specversion",
        "id",
        "source",
        "type",
        "subject",
        "time",
        "data",
        "county",
        "schemaversion",
    } <= set(doc)
    assert doc["type"] == "tiaojie.intake.CaseRegistered"


def test_derived_ids_are_deterministic_and_distinct_per_handler() -> None:
    assert derived_id("e1", "assign") == derived_id("e1", "assign")
    assert derived_id("e1", "assign") != derived_id("e1", "stats")
    assert derived_id("e1", "assign") != derived_id("e2", "assign")


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"", b'{"specversion": "1.0"}'])
def test_malformed_envelopes_are_refused(raw: bytes) -> None:
    with pytest.raises((ValueError, ValidationError)):
        decode_event(raw)


def test_unknown_type_is_reported() -> None:
    event = decode_event(
        orjson.dumps(
            {
                "specversion": "1.0",
                "id": "1",
                "source": "/x",
                "type": "x.Y",
                "time": "2026-01-01T00:00:00Z",
                "data": {},
            }
        )
    )
    with pytest.raises(UnknownEventType):
        event.payload()


def test_consumers_ignore_fields_added_later() -> None:
    data = registered().model_dump(mode="json") | {"a_field_from_the_future": 1}
    assert CaseRegistered.model_validate(data) == registered()


def test_inbound_submission_rejects_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        DisputeSubmitted.model_validate(
            {
                "submission": {
                    "channel": "web",
                    "county": "371302",
                    "description": "x",
                    "applicants": [{"name": "a"}],
                    "surprise": 1,
                }
            }
        )


def test_every_event_type_is_registered_once_and_past_tense() -> None:
    assert "tiaojie.intake.CaseRegistered" in EVENT_TYPES
    for name, model in EVENT_TYPES.items():
        assert name.endswith(model.__name__)
        assert model.model_config.get("frozen") is True


def test_topic_names() -> None:
    assert topics.dlq(topics.SUBMISSIONS) == "intake.submissions.v1.dlq"
    assert topics.agency_referrals("court-1") == "agency.court-1.referrals.v1"
    assert all(t.endswith(".v1") for t in topics.ALL_TOPICS)
    produced = [t for ts in topics.PRODUCED_BY.values() for t in ts]
    assert len(produced) == len(set(produced)), "a topic has more than one producer"
