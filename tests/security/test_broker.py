"""Attacks on the broker path, each written as the attack it stops (issue 13's probes):
reading applicants' personal data without a credential, a service or an agency writing a
topic it does not own, a revoked credential used again, and events that pretend to come
from another producer or that no one reads."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
)

from devkit.access import credentials_of
from devkit.mesh import Mesh
from tests.security.conftest import Kcat, register
from tests.support.data import COUNTY, auth
from tests.support.kafka import eventually, produce, read_all
from tiaojie.contracts import topics
from tiaojie.contracts.common import Role
from tiaojie.contracts.envelope import new_event
from tiaojie.contracts.intake import CaseResolved
from tiaojie.contracts.registry import MediatorAssigned, OrganisationUpdated
from tiaojie.runtime.access import Deployment, until_accepted
from tiaojie.runtime.kafka import client_kwargs
from tiaojie.runtime.settings import KafkaCredentials, RuntimeSettings

pytestmark = [pytest.mark.security, pytest.mark.timeout(300)]


def case_resolved(case_id: str, source: str) -> bytes:
    data = CaseResolved(
        case_id=case_id, county=COUNTY, status="resolved", at="2026-03-02T02:00:00Z", agreement_form="oral"
    )
    return new_event(data, source=source, subject=case_id, county=COUNTY).to_bytes()


def mediator_assigned(case_id: str, source: str) -> bytes:
    data = MediatorAssigned(
        case_id=case_id,
        county=COUNTY,
        organisation_id="org-371302001-tc",
        mediator_id="med-attacker",
        mediator_name="冒名调解员",
        score=1.0,
        reason="forged",
        assigned_at="2026-03-02T02:00:00Z",
    )
    return new_event(data, source=source, subject=case_id, county=COUNTY).to_bytes()


async def send(credentials: KafkaCredentials, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(**client_kwargs(credentials), acks="all", enable_idempotence=True)
    try:
        await producer.start()
        await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()


async def fetch(credentials: KafkaCredentials, topic: str, *, group: str | None = None) -> int:
    """How many records this principal can read from a topic (raises when refused)."""
    consumer = AIOKafkaConsumer(
        topic,
        **client_kwargs(credentials),
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        await consumer.start()
        got = await consumer.getmany(timeout_ms=3000)
        return sum(len(v) for v in got.values())
    finally:
        await consumer.stop()


def reasons(records: list) -> list[tuple[str, str]]:
    out = []
    for record in records:
        headers = {k: v.decode() for k, v in record.headers}
        out.append((headers["x-tiaojie-reason"], headers["x-tiaojie-service"]))
    return out


async def test_without_a_credential_nobody_reads_the_applicants_or_writes_anything(
    mesh: Mesh, settings: RuntimeSettings, kcat: Kcat
) -> None:
    submissions = settings.topic(topics.SUBMISSIONS)
    await produce(settings.kafka_bootstrap, submissions, [b'{"name": "sentinel"}'], key=b"sentinel")
    # Before: `kcat -C -t intake.submissions.v1` printed every applicant's name, ID and phone.
    read = await kcat.arun(settings.kafka_bootstrap, "-C", "-t", submissions, "-o", "beginning", "-e", "-q")
    assert read.returncode != 0 and read.stdout == b""
    written = await kcat.arun(settings.kafka_bootstrap, "-P", "-t", submissions, stdin=b"forged\n")
    assert written.returncode != 0
    # A wrong password is an authentication error, not data.
    admin = settings.kafka_credentials()
    with pytest.raises(TimeoutError):
        await until_accepted(dataclasses.replace(admin, password="guess"), timeout=2)
    # A plain aiokafka client without SASL cannot even bootstrap.
    with pytest.raises(KafkaConnectionError):
        await fetch(dataclasses.replace(admin, security_protocol="PLAINTEXT"), submissions)


async def test_a_service_writes_only_what_it_produces_and_reads_only_what_it_consumes(
    mesh: Mesh, settings: RuntimeSettings, deployment: Deployment, unique: str
) -> None:
    cases = settings.topic(topics.CASES)
    # Before: a CaseResolved on intake.cases.v1 from anyone made referral close the loop.
    with pytest.raises(TopicAuthorizationFailedError):
        await send(deployment.services["referral"], cases, case_resolved(f"c-{unique}", "/tiaojie/intake"))
    # Before: a forged MediatorAssigned was recorded by intake as the registry's decision.
    with pytest.raises(TopicAuthorizationFailedError):
        await send(
            deployment.services["intake"],
            settings.topic(topics.ASSIGNMENTS),
            mediator_assigned(f"c-{unique}", "/tiaojie/registry"),
        )
    # The owner may (the control): the registry writes its own topic.
    org = OrganisationUpdated(
        organisation_id=f"org-{unique}",
        version=1,
        name="测试调委会",
        short_name="测",
        kind="township_committee",
        level="township",
        county=COUNTY,
        division_code="371302001",
    )
    event = new_event(org, source="/tiaojie/registry", subject=org.organisation_id, county=COUNTY)
    await send(deployment.services["registry"], settings.topic(topics.ORGANISATIONS), event.to_bytes())
    # Reading: the registry never consumes the submissions (applicants' personal data).
    with pytest.raises(TopicAuthorizationFailedError):
        await fetch(deployment.services["registry"], settings.topic(topics.SUBMISSIONS))
    # A service joins only consumer groups under its own name.
    with pytest.raises(GroupAuthorizationFailedError):
        await fetch(deployment.services["stats"], cases, group=settings.group("intake"))


async def test_an_agency_writes_its_own_topic_reads_its_outcomes_and_nothing_else(
    mesh: Mesh, settings: RuntimeSettings, kcat: Kcat, unique: str
) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        court = await register(client, mesh, settings, f"court-{unique}")
        other = await register(client, mesh, settings, f"police-{unique}", "police")
    kafka = court.answer["kafka"]
    assert kafka["sasl_mechanism"] == "SCRAM-SHA-512" and kafka["username"] == court.answer["kafka_principal"]
    inbound, outcomes = court.answer["inbound_topic"], court.answer["outbound_topic"]
    ref = f"SEC-{unique}"
    referral = new_event(
        _referral(ref), source=f"/agencies/{court.id}", subject=ref, county=COUNTY
    ).to_bytes()
    # The court's system, as docs/agency-integration.md tells it to: kcat with SASL.
    written = await kcat.arun(
        kafka["bootstrap"], "-P", "-t", inbound, "-k", ref, credentials=court.credentials, stdin=referral
    )
    assert written.returncode == 0, written.stderr.decode()

    async def answered() -> bool:
        got = await kcat.arun(
            kafka["bootstrap"],
            "-C",
            "-t",
            outcomes,
            "-o",
            "beginning",
            "-e",
            "-q",
            credentials=court.credentials,
        )
        return got.returncode == 0 and ref.encode() in got.stdout

    await eventually(answered, timeout=90, interval=1)
    # Its consumer groups: under its prefix only.
    assert await fetch(court.credentials, outcomes, group=f"{kafka['consumer_group_prefix']}reader") >= 1
    with pytest.raises(GroupAuthorizationFailedError):
        await fetch(court.credentials, outcomes, group=f"reader-{unique}")
    # Another agency's topics, the case lifecycle, the applicants: refused.
    for topic in (other.answer["inbound_topic"], settings.topic(topics.CASES)):
        refused = await kcat.arun(
            kafka["bootstrap"], "-P", "-t", topic, credentials=court.credentials, stdin=b"x\n"
        )
        assert refused.returncode != 0, topic
    with pytest.raises(TopicAuthorizationFailedError):
        await send(
            court.credentials, settings.topic(topics.CASES), case_resolved(f"c-{unique}", "/tiaojie/intake")
        )
    for topic in (other.answer["outbound_topic"], settings.topic(topics.SUBMISSIONS)):
        with pytest.raises(TopicAuthorizationFailedError):
            await fetch(court.credentials, topic)


async def test_a_rotated_or_deactivated_credential_stops_working(
    mesh: Mesh, settings: RuntimeSettings, unique: str
) -> None:
    admin = auth(settings, Role.ADMIN)
    async with httpx.AsyncClient(timeout=60) as client:
        court = await register(client, mesh, settings, f"court-r{unique}")
        again = await client.post(
            f"{mesh.url('referral')}/api/v1/agencies",
            json={"id": court.id, "kind": "court", "county": COUNTY, "name": f"测试机构{court.id}"},
            headers=admin,
        )
        assert again.status_code == 200 and again.json()["kafka"] is None  # shown once only
        inbound = court.answer["inbound_topic"]
        # The attacker who stole the first password keeps a connection open across the rotation.
        stolen = AIOKafkaProducer(**client_kwargs(court.credentials), acks="all", enable_idempotence=True)
        await stolen.start()
        try:
            await stolen.send_and_wait(inbound, b"{}", key=b"before")
            rotated = await client.post(
                f"{mesh.url('referral')}/api/v1/agencies/{court.id}/credentials", headers=admin
            )
            assert rotated.status_code == 200, rotated.text
            new = credentials_of(rotated.json())
            assert new.username != court.credentials.username
            with pytest.raises(TopicAuthorizationFailedError):
                await stolen.send_and_wait(inbound, b"{}", key=b"after")
        finally:
            await stolen.stop()
        await until_accepted(new, timeout=5)
        with pytest.raises(TimeoutError):
            await until_accepted(court.credentials, timeout=3)
        await send(new, rotated.json()["inbound_topic"], b"{}")  # dead-lettered, but accepted by the broker
        # Another county's administrator does not learn the agency exists.
        foreign = auth(settings, Role.ADMIN, ["371311"])
        hidden = await client.post(
            f"{mesh.url('referral')}/api/v1/agencies/{court.id}/deactivate", headers=foreign
        )
        assert hidden.status_code == 404
        gone = await client.post(
            f"{mesh.url('referral')}/api/v1/agencies/{court.id}/deactivate", headers=admin
        )
        assert gone.status_code == 200 and gone.json()["active"] is False
        with pytest.raises(TimeoutError):
            await until_accepted(new, timeout=3)
        refused = await client.post(
            f"{mesh.url('referral')}/api/v1/agencies/{court.id}/credentials", headers=admin
        )
        assert refused.status_code == 409


async def test_a_system_may_submit_disputes_and_nothing_more(
    mesh: Mesh, settings: RuntimeSettings, unique: str
) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        system = await register(client, mesh, settings, f"grid-{unique}", "system")
    assert system.answer["inbound_topic"] == settings.topic(topics.SUBMISSIONS)
    assert system.answer["outbound_topic"] is None and system.answer["kafka"]["consumer_group_prefix"] is None
    await send(system.credentials, settings.topic(topics.SUBMISSIONS), b"{}")  # the DLQ's, but written
    with pytest.raises(TopicAuthorizationFailedError):
        await fetch(system.credentials, settings.topic(topics.SUBMISSIONS))
    with pytest.raises(TopicAuthorizationFailedError):
        await send(system.credentials, settings.topic(topics.CASES), case_resolved(f"c-{unique}", "/x"))


async def test_events_from_a_foreign_source_or_of_no_known_type_are_dead_lettered(
    mesh: Mesh, settings: RuntimeSettings, unique: str
) -> None:
    """Defence in depth: even a writer the ACLs let through (here the administrator) cannot
    make a service apply an event that claims another producer, and a sender of an event
    type nobody reads is told so through the DLQ instead of being silently ignored."""
    assignments = settings.topic(topics.ASSIGNMENTS)
    forged = mediator_assigned(f"c-{unique}", "/tiaojie/intake")
    await produce(settings.kafka_bootstrap, assignments, [forged], key=f"c-{unique}".encode())
    readers = {service for service, read in topics.CONSUMED_BY.items() if topics.ASSIGNMENTS in read}
    assert len(readers) >= 2

    async def refused_by() -> set[tuple[str, str]] | None:
        found = await read_all(settings.kafka_bootstrap, topics.dlq(assignments), expect=10_000, timeout=3)
        mine = {r for rec, r in zip(found, reasons(found), strict=True) if rec.value == forged}
        return mine if len(mine) >= len(readers) else None

    # Every consumer of the topic refused it.
    refused = await eventually(refused_by, timeout=60, interval=1)
    assert refused == {("foreign_source", s) for s in readers}
    submissions = settings.topic(topics.SUBMISSIONS)
    strange = orjson.dumps(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": f"/systems/{unique}",
            "type": "tiaojie.intake.DisputeWithdrawnByEmail",
            "time": "2026-03-02T02:00:00Z",
            "data": {},
        }
    )
    await produce(settings.kafka_bootstrap, submissions, [strange], key=b"strange")

    async def unknown() -> bool:
        found = await read_all(settings.kafka_bootstrap, topics.dlq(submissions), expect=10_000, timeout=3)
        return ("unknown_type", "intake") in [
            r for rec, r in zip(found, reasons(found), strict=True) if rec.value == strange
        ]

    await eventually(unknown, timeout=60, interval=1)


async def test_tls_listener_verifies_the_broker_and_carries_a_service(
    settings: RuntimeSettings, deployment: Deployment, real_servers: object, kcat: Kcat, unique: str
) -> None:
    """SASL_SSL: the broker's certificate is signed by the deployment's CA (written by
    `tiaojie kafka certs`), clients verify it, and SCRAM runs inside TLS."""
    from tiaojie.infra.stack import Infra

    if not str(getattr(real_servers, "how", "")).startswith("local"):
        pytest.skip("the SASL_SSL listener tested here is the project's own broker's")
    kafka = Infra().kafka
    intake = deployment.services["intake"]
    over_tls = dataclasses.replace(
        intake,
        bootstrap=kafka.tls_bootstrap,
        security_protocol="SASL_SSL",
        ca_file=str(kafka.certificates.ca),
    )
    cases = settings.topic(topics.CASES)
    await send(over_tls, cases, b"{}")  # a malformed record: the consumers dead-letter it
    # A client that trusts only the system's CAs refuses the broker (no silent downgrade).
    with pytest.raises(KafkaError):
        await asyncio.wait_for(send(dataclasses.replace(over_tls, ca_file=None), cases, b"{}"), 30)
    got = await kcat.arun(
        kafka.tls_bootstrap,
        "-C",
        "-t",
        settings.topic(topics.CASES),
        "-o",
        "beginning",
        "-e",
        "-q",
        "-c",
        "1",
        credentials=dataclasses.replace(
            settings.kafka_credentials(),
            bootstrap=kafka.tls_bootstrap,
            security_protocol="SASL_SSL",
            ca_file=str(kafka.certificates.ca),
        ),
    )
    assert got.returncode == 0, got.stderr.decode()


def _referral(ref: str):  # type: ignore[no-untyped-def]
    from tiaojie.contracts.referral import AgencyReferralSubmitted

    return AgencyReferralSubmitted.model_validate(
        {
            "agency_ref": ref,
            "referral_kind": "delegation",
            "submission": {
                "channel": "referral",
                "county": COUNTY,
                "township": "371302001",
                "category": "contract",
                "description": "买卖合同纠纷：被告拖欠货款三万元，双方同意诉前调解。",
                "applicants": [{"name": "王某", "id_number": "371302198001011239", "phone": "13812345678"}],
                "respondents": [{"name": "某商贸有限公司", "kind": "organisation"}],
            },
        }
    )
