"""Agencies publishing on their own topics with a plain Kafka client, consumed through the
pattern subscription: a topic registered while the service runs is found, a spoofed
source, a deactivated agency, a malformed event and an invalid payload each go to the DLQ
with their reason, and the sender hears why whenever its topic identifies it."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import orjson
import pytest

from tests.referral.conftest import T0, Factory, court, referral_data
from tests.support.data import COUNTY
from tests.support.kafka import eventually, produce, read_all
from tiaojie.contracts import topics
from tiaojie.contracts.common import AgencyKind
from tiaojie.contracts.envelope import new_event
from tiaojie.referral.service import referral_id_for
from tiaojie.runtime.clock import ManualClock
from tiaojie.runtime.settings import KafkaCredentials, RuntimeSettings

pytestmark = pytest.mark.integration


def submitted(agency_id: str, ref: str, *, source: str | None = None) -> bytes:
    """What an agency's system puts on its topic: a structured-mode CloudEvent."""
    return new_event(
        referral_data(ref), source=source or f"/agencies/{agency_id}", subject=ref, county=COUNTY
    ).to_bytes()


def distinct(dead: list[Any]) -> list[Any]:
    """Dead letters once per original message. The DLQ is at least once: a batch whose
    commit is lost to a rebalance is dead-lettered again on redelivery, with the same
    original partition and offset headers that consumers of the DLQ deduplicate by."""
    seen: dict[tuple[bytes, bytes], Any] = {}
    for record in dead:
        headers = dict(record.headers)
        seen.setdefault(
            (headers["x-tiaojie-original-partition"], headers["x-tiaojie-original-offset"]), record
        )
    return list(seen.values())


async def test_agency_topics_are_consumed_checked_and_answered(
    make_referral: Factory, settings: RuntimeSettings, unique: str
) -> None:
    parts = await make_referral(ManualClock(T0), consume=True)
    # Registered after the consumer started: found by the pattern at the next metadata refresh.
    agency, _, credential = await parts.service.register_agency(
        agency_id=f"court-{unique}",
        kind=AgencyKind.COURT,
        county=COUNTY,
        name="兰山区人民法院",
        source=None,
        by="t",
    )
    assert credential is not None
    # The court's own system, with the credential it was given at registration.
    as_court = KafkaCredentials.of(dataclasses.asdict(credential))
    inbound = parts.host.settings.topic(topics.agency_referrals(agency.id))
    outcomes = parts.host.settings.topic(topics.agency_outcomes(agency.id))
    good_ref = f"(2026)鲁1302民诉前调{unique}号"
    spoofed = submitted(agency.id, "SPOOF-1", source="/agencies/some-other-court")
    broken = b'{"specversion": "1.0", "id": "half'
    invalid_event = new_event(referral_data("BAD-1"), source=f"/agencies/{agency.id}", subject="BAD-1")
    invalid = invalid_event.model_copy(
        update={"data": {**invalid_event.data, "submission": {"county": "12", "description": ""}}}
    ).to_bytes()
    wrong_type = orjson.dumps(
        {
            **orjson.loads(submitted(agency.id, "TYPE-1")),
            "type": "tiaojie.agency.SomethingElse",
            "id": str(uuid.uuid4()),
        }
    )
    await produce(
        settings.kafka_bootstrap,
        inbound,
        [spoofed, broken, invalid, wrong_type, submitted(agency.id, good_ref)],
        key=b"court",
        credentials=as_court,
    )

    referral_id = referral_id_for(agency.id, good_ref)
    doc = await eventually(lambda: parts.service.get_referral(referral_id), timeout=60)
    assert doc.status == "requested" and doc.agency_ref == good_ref

    dead = distinct(await read_all(settings.kafka_bootstrap, topics.dlq(inbound), expect=4, timeout=30))
    reasons = [dict(r.headers)["x-tiaojie-reason"].decode() for r in dead]
    assert reasons == ["source_mismatch", "malformed_envelope", "invalid_payload", "unknown_type"]
    assert dead[0].value == spoofed and dead[1].value == broken  # the original bytes, for replay
    assert b"submission.county" in dict(dead[2].headers)["x-tiaojie-error"]

    answers = await read_all(settings.kafka_bootstrap, outcomes, expect=5, timeout=30, credentials=as_court)
    notices = [orjson.loads(r.value) for r in answers]
    rejected = [n["data"] for n in notices if n["type"] == "tiaojie.agency.AgencyReferralRejected"]
    # Keyed by the agency's reference, so spread over partitions: compare without order.
    by_reason = {n["reason"]: n for n in rejected}
    assert {(n["reason"], n["agency_ref"]) for n in rejected} == {
        ("source_mismatch", "SPOOF-1"),
        ("malformed_envelope", None),
        ("invalid_payload", "BAD-1"),
        ("unknown_type", "TYPE-1"),
    }
    assert by_reason["invalid_payload"]["event_id"] == invalid_event.id
    assert "submission.county" in by_reason["invalid_payload"]["detail"]
    received = [n for n in notices if n["type"] == "tiaojie.agency.AgencyReferralReceived"]
    assert len(received) == 1 and received[0]["data"]["agency_ref"] == good_ref
    assert received[0]["data"]["referral_id"] == referral_id

    # Sending the same reference again is the same referral, not a second one.
    await produce(
        settings.kafka_bootstrap,
        inbound,
        [submitted(agency.id, good_ref)],
        key=b"court",
        credentials=as_court,
    )
    again = await read_all(settings.kafka_bootstrap, topics.dlq(inbound), expect=5, timeout=3)
    assert len(distinct(again)) == 4
    assert await parts.repository.referrals.docs.count_documents({"agency_id": agency.id}) == 1


async def test_what_reaches_the_topic_of_a_deactivated_agency_is_dead_lettered(
    make_referral: Factory, settings: RuntimeSettings, unique: str
) -> None:
    """A topic nobody registered is invisible to the service (the broker gives it no ACL on
    it); a deactivated agency's topic stays readable so that whatever is still on it, or
    arrives from an administrator, is dead-lettered rather than left unread."""
    parts = await make_referral(ManualClock(T0), consume=True)
    ghost = f"ghost-{unique}"
    await court(parts, ghost)
    await parts.service.deactivate_agency(agency_id=ghost, counties=[COUNTY], by="t")
    inbound = parts.host.settings.topic(topics.agency_referrals(ghost))
    await produce(settings.kafka_bootstrap, inbound, [submitted(ghost, "G-1")], key=b"ghost")
    dead = await read_all(settings.kafka_bootstrap, topics.dlq(inbound), expect=1, timeout=60)
    assert [dict(r.headers)["x-tiaojie-reason"] for r in dead] == [b"unknown_agency"]
    assert await parts.service.get_referral(referral_id_for(ghost, "G-1")) is None
    dead_letters = parts.host.registry.get_sample_value(
        "tiaojie_dead_letters_total",
        {"service": parts.host.service, "topic": inbound, "reason": "unknown_agency"},
    )
    assert dead_letters == 1
