"""The closed loop with every service a separate process, driven by plain Kafka clients
acting as a court, a police station and a petition bureau: a referral in on
agency.<id>.referrals.v1 → accepted → the case in intake → a mediator assigned → the
outcome on agency.<id>.outcomes.v1 under the agency's own reference.

The agencies' events are written here as raw JSON, not with our models: what any Kafka
client (kcat, a Java producer) would send after reading docs/agency-integration.md.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from devkit.access import credentials_of
from devkit.mesh import Mesh
from tests.support.data import COUNTY, TOWNSHIP, auth, load_registry, small_registry
from tests.support.kafka import eventually, produce
from tiaojie.contracts.common import Role
from tiaojie.infra import synthetic
from tiaojie.runtime.kafka import client_kwargs
from tiaojie.runtime.settings import KafkaCredentials, RuntimeSettings

pytestmark = pytest.mark.e2e

SECOND_TOWNSHIP = "371302002"


@dataclass
class World:
    agencies: dict[str, str]  # kind -> agency id
    referral: str
    intake: str
    # kind -> the broker credential the agency was given at registration: every agency
    # below publishes and reads with its own, as a court's system would.
    credentials: dict[str, KafkaCredentials]


async def metric(client: httpx.AsyncClient, url: str, name: str, **labels: str) -> float:
    text = (await client.get(f"{url}/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items())
    )


@pytest.fixture(scope="module")
async def world(mesh: Mesh, settings: RuntimeSettings) -> World:
    """Two township committees under the county centre, and three registered agencies."""
    async with httpx.AsyncClient(timeout=30) as client:
        await load_registry(client, mesh.url("registry"), settings)
        admin = auth(settings, Role.ADMIN)
        await file_second_committee(client, mesh.url("registry"), admin)
        suffix = uuid.uuid4().hex[:6]
        names = {"court": "兰山区人民法院", "police": "临沂市公安局兰山分局", "petition": "兰山区信访局"}
        agencies = {}
        credentials = {}
        for kind, name in names.items():
            body = {"id": f"{kind}-{suffix}", "kind": kind, "county": COUNTY, "name": name}
            created = await client.post(f"{mesh.url('referral')}/api/v1/agencies", json=body, headers=admin)
            assert created.status_code == 201, created.text
            assert created.json()["inbound_topic"] == settings.topic(f"agency.{kind}-{suffix}.referrals.v1")
            agencies[kind] = body["id"]
            credentials[kind] = credentials_of(created.json())
        organisations = settings.topic("registry.organisations.v1")
        for service in ("referral", "intake"):  # both route by the organisations they learnt

            async def projected(service: str = service) -> bool:
                handled = await metric(
                    client,
                    mesh.url(service),
                    "tiaojie_events_handled_total",
                    topic=organisations,
                    outcome="handled",
                )
                return handled >= 3

            await eventually(projected, timeout=60)
    return World(
        agencies=agencies, referral=mesh.url("referral"), intake=mesh.url("intake"), credentials=credentials
    )


async def file_second_committee(client: httpx.AsyncClient, registry: str, admin: dict[str, str]) -> None:
    """The neighbouring street's committee under the same centre, with its own mediators."""
    orgs, mediators = small_registry(COUNTY, SECOND_TOWNSHIP)
    committee = f"org-{SECOND_TOWNSHIP}-tc"
    rng = random.Random(99)
    for org in orgs:
        if org["id"] == committee:
            (
                await client.post(f"{registry}/api/v1/organisations", json=org, headers=admin)
            ).raise_for_status()
    for mediator in mediators:
        if mediator["organisation_ids"] == [committee]:
            body = {**mediator, "id_number": synthetic.id_number(rng, COUNTY)}
            (await client.post(f"{registry}/api/v1/mediators", json=body, headers=admin)).raise_for_status()


def agency_event(agency_id: str, ref: str, kind: str, *, description: str) -> bytes:
    """A referral exactly as an agency's own system would write it."""
    return json.dumps(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": f"/agencies/{agency_id}",
            "type": "tiaojie.agency.AgencyReferralSubmitted",
            "subject": ref,
            "time": datetime.now(UTC).isoformat(),
            "datacontenttype": "application/json",
            "data": {
                "agency_ref": ref,
                "referral_kind": kind,
                "submission": {
                    "channel": "referral",
                    "county": COUNTY,
                    "township": TOWNSHIP,
                    "category": "contract",
                    "description": description,
                    "applicants": [
                        {"name": "王某", "id_number": "371302198001011239", "phone": "13812345678"}
                    ],
                    "respondents": [{"name": "李某"}],
                    "amount": 30000,
                },
            },
        },
        ensure_ascii=False,
    ).encode()


class Outcomes:
    """The agency's side of its outcomes topic: a plain consumer from the beginning."""

    def __init__(self, settings: RuntimeSettings, agency_id: str, credentials: KafkaCredentials) -> None:
        self.topic = settings.topic(f"agency.{agency_id}.outcomes.v1")
        self.credentials = credentials
        self.seen: list[dict[str, Any]] = []
        self.keys: list[bytes | None] = []

    async def wait(self, ref: str, event_type: str, timeout: float = 120) -> dict[str, Any]:
        consumer = AIOKafkaConsumer(
            self.topic, **client_kwargs(self.credentials), auto_offset_reset="earliest", group_id=None
        )
        await consumer.start()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        notice = json.loads(record.value)
                        if notice["data"].get("agency_ref") == ref and notice["type"] == event_type:
                            self.keys.append(record.key)
                            return notice
        finally:
            await consumer.stop()
        raise AssertionError(f"no {event_type} for {ref} on {self.topic} within {timeout}s")


async def referred_case(
    client: httpx.AsyncClient, world: World, settings: RuntimeSettings, referral_id: str
) -> str:
    desk = auth(settings, Role.DESK)

    async def case_id() -> str | None:
        got = await client.get(f"{world.referral}/api/v1/referrals/{referral_id}", headers=desk)
        return got.json().get("case_id")

    return await eventually(case_id, timeout=90)


async def mediator_of(
    client: httpx.AsyncClient, world: World, settings: RuntimeSettings, case_id: str, org: str
) -> str:
    desk = auth(settings, Role.DESK)

    async def assigned() -> str | None:
        case = (await client.get(f"{world.intake}/api/v1/disputes/{case_id}", headers=desk)).json()
        assignment = case.get("assignment") or {}
        if case.get("organisation_id") == org and assignment.get("organisation_id") == org:
            return str(assignment["mediator_id"])
        return None

    return await eventually(assigned, timeout=90)


async def mediate(client: httpx.AsyncClient, world: World, settings: RuntimeSettings, case_id: str) -> None:
    centre = auth(settings, Role.CENTER)
    session = await client.post(
        f"{world.intake}/api/v1/disputes/{case_id}/sessions",
        json={"held_at": datetime.now(UTC).isoformat(), "place": "兰山街道人民调解委员会调解室"},
        headers={**centre, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert session.status_code == 200, session.text


async def referral_in(
    client: httpx.AsyncClient,
    world: World,
    settings: RuntimeSettings,
    kind: str,
    ref: str,
    referral_kind: str,
) -> tuple[Outcomes, str]:
    """The agency publishes; the receiving body accepts; returns the referral id."""
    agency_id = world.agencies[kind]
    outcomes = Outcomes(settings, agency_id, world.credentials[kind])
    await produce(
        settings.kafka_bootstrap,
        settings.topic(f"agency.{agency_id}.referrals.v1"),
        [agency_event(agency_id, ref, referral_kind, description="双方因货款结算发生纠纷，协商未果。")],
        key=ref.encode(),
        credentials=world.credentials[kind],
    )
    received = await outcomes.wait(ref, "tiaojie.agency.AgencyReferralReceived")
    referral_id = received["data"]["referral_id"]
    assert received["data"]["organisation_id"] == f"org-{TOWNSHIP}-tc"
    accepted = await client.post(
        f"{world.referral}/api/v1/referrals/{referral_id}/accept", headers=auth(settings, Role.DESK)
    )
    assert accepted.status_code == 200, accepted.text
    notice = await outcomes.wait(ref, "tiaojie.agency.AgencyReferralAccepted")
    assert notice["data"]["due"]
    return outcomes, referral_id


async def test_court_referral_resolves_and_the_court_gets_the_agreement(
    world: World, settings: RuntimeSettings
) -> None:
    ref = f"(2026)鲁1302民诉前调{uuid.uuid4().hex[:6]}号"
    async with httpx.AsyncClient(timeout=30) as client:
        outcomes, referral_id = await referral_in(client, world, settings, "court", ref, "delegation")
        case_id = await referred_case(client, world, settings, referral_id)
        mediator = await mediator_of(client, world, settings, case_id, f"org-{TOWNSHIP}-tc")
        assert mediator  # a mediator of the township committee (mediator_of checks the organisation)
        await outcomes.wait(ref, "tiaojie.agency.AgencyReferralInMediation")
        await mediate(client, world, settings, case_id)
        resolved = await client.post(
            f"{world.intake}/api/v1/disputes/{case_id}/resolve",
            json={
                "form": "written",
                "summary": "被申请人于2026年4月30日前付清货款三万元",
                "judicial_confirmation": True,
                "text": "申请人与被申请人自愿达成如下协议：被申请人于2026年4月30日前付清货款三万元。",
            },
            headers={**auth(settings, Role.CENTER), "Idempotency-Key": str(uuid.uuid4())},
        )
        assert resolved.status_code == 200, resolved.text
        closed = await outcomes.wait(ref, "tiaojie.agency.AgencyReferralClosed")
        shown = (
            await client.get(
                f"{world.referral}/api/v1/referrals/{referral_id}", headers=auth(settings, Role.DESK)
            )
        ).json()
    data = closed["data"]
    assert data["outcome"] == "resolved" and data["agency_ref"] == ref and data["case_id"] == case_id
    assert data["agreement_summary"] == "被申请人于2026年4月30日前付清货款三万元"
    assert data["judicial_confirmation_ready"] is True  # 司法确认 for a court's referral
    assert set(outcomes.keys) == {ref.encode()}  # keyed by the court's reference, not ours
    assert "王某" not in json.dumps(closed, ensure_ascii=False)
    assert shown["status"] == "resolved" and [h["action"] for h in shown["history"]][:2] == [
        "request",
        "accept",
    ]


async def test_police_referral_fails_and_the_police_proceed(world: World, settings: RuntimeSettings) -> None:
    ref = f"兰公(治)调字{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(timeout=30) as client:
        outcomes, referral_id = await referral_in(client, world, settings, "police", ref, "police")
        case_id = await referred_case(client, world, settings, referral_id)
        await mediator_of(client, world, settings, case_id, f"org-{TOWNSHIP}-tc")
        await mediate(client, world, settings, case_id)
        failed = await client.post(
            f"{world.intake}/api/v1/disputes/{case_id}/fail",
            json={"route": "litigation", "reason": "双方对赔偿数额分歧过大"},
            headers={**auth(settings, Role.CENTER), "Idempotency-Key": str(uuid.uuid4())},
        )
        assert failed.status_code == 200, failed.text
        closed = await outcomes.wait(ref, "tiaojie.agency.AgencyReferralClosed")
    data = closed["data"]
    assert (data["outcome"], data["route"], data["agency_ref"]) == ("failed", "litigation", ref)
    assert data["judicial_confirmation_ready"] is False


async def test_petition_referral_is_transferred_once_then_resolves(
    world: World, settings: RuntimeSettings
) -> None:
    ref = f"兰信转{uuid.uuid4().hex[:6]}"
    other = f"org-{SECOND_TOWNSHIP}-tc"
    desk = auth(settings, Role.DESK)
    async with httpx.AsyncClient(timeout=30) as client:
        outcomes, referral_id = await referral_in(client, world, settings, "petition", ref, "petition")
        case_id = await referred_case(client, world, settings, referral_id)
        await mediator_of(client, world, settings, case_id, f"org-{TOWNSHIP}-tc")
        # 转办: the dispute belongs to the neighbouring street's committee.
        asked = await client.post(
            f"{world.referral}/api/v1/transfers",
            json={
                "case_id": case_id,
                "kind": "lateral",
                "to_organisation_id": other,
                "reason": "纠纷发生地属银雀山街道，属地管辖",
                "reason_code": "jurisdiction",
            },
            headers={**desk, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert asked.status_code == 201, asked.text
        transfer_id = asked.json()["id"]
        taken = await client.post(f"{world.referral}/api/v1/transfers/{transfer_id}/accept", headers=desk)
        assert taken.status_code == 200 and taken.json()["status"] == "accepted", taken.text
        # Intake moves the case, the registry assigns a mediator of the new committee.
        mediator = await mediator_of(client, world, settings, case_id, other)
        assert mediator  # of the new committee: mediator_of checks the organisation
        await mediate(client, world, settings, case_id)
        resolved = await client.post(
            f"{world.intake}/api/v1/disputes/{case_id}/resolve",
            json={"form": "oral", "summary": "双方就补偿金额达成口头协议"},
            headers={**auth(settings, Role.CENTER), "Idempotency-Key": str(uuid.uuid4())},
        )
        assert resolved.status_code == 200, resolved.text
        closed = await outcomes.wait(ref, "tiaojie.agency.AgencyReferralClosed")
        hops = (await client.get(f"{world.referral}/api/v1/cases/{case_id}/hops", headers=desk)).json()
        shown = (await client.get(f"{world.referral}/api/v1/referrals/{referral_id}", headers=desk)).json()
    assert closed["data"]["outcome"] == "resolved" and closed["data"]["agency_ref"] == ref
    assert [(t["kind"], t["status"], t["to_organisation_id"]) for t in hops["transfers"]] == [
        ("lateral", "accepted", other)
    ]
    assert [r["id"] for r in hops["referrals"]] == [referral_id]
    actions = [h["action"] for h in shown["history"]]
    assert "transfer:lateral" in actions and shown["organisation_id"] == other


async def test_an_agency_sees_only_its_own_referrals_over_http(
    world: World, settings: RuntimeSettings
) -> None:
    """Agencies without Kafka: POST and GET /api/v1/referrals with an agency token."""
    court, police = world.agencies["court"], world.agencies["police"]
    ref = f"HTTP-{uuid.uuid4().hex[:6]}"
    body = json.loads(agency_event(court, ref, "entrustment_simplified", description="委托调解：借款纠纷。"))[
        "data"
    ]
    as_court = auth(settings, Role.AGENCY, agency_id=court)
    async with httpx.AsyncClient(timeout=30) as client:
        created = await client.post(f"{world.referral}/api/v1/referrals", json=body, headers=as_court)
        again = await client.post(f"{world.referral}/api/v1/referrals", json=body, headers=as_court)
        referral_id = created.json()["id"]
        mine = await client.get(f"{world.referral}/api/v1/referrals/{referral_id}", headers=as_court)
        theirs = await client.get(
            f"{world.referral}/api/v1/referrals/{referral_id}",
            headers=auth(settings, Role.AGENCY, agency_id=police),
        )
        other_county = await client.get(
            f"{world.referral}/api/v1/referrals/{referral_id}", headers=auth(settings, Role.DESK, ["371311"])
        )
        bad = await client.post(
            f"{world.referral}/api/v1/referrals",
            json={**body, "agency_ref": "HTTP-bad", "referral_kind": "carrier_pigeon"},
            headers=as_court,
        )
        declined = await client.post(
            f"{world.referral}/api/v1/referrals/{referral_id}/decline",
            json={"reason": "不属于本组织受理范围"},
            headers=auth(settings, Role.DESK),
        )
        late_accept = await client.post(
            f"{world.referral}/api/v1/referrals/{referral_id}/accept", headers=auth(settings, Role.DESK)
        )
    assert created.status_code == 201 and again.status_code == 200 and again.json()["duplicate"] is True
    assert mine.status_code == 200 and mine.json()["agency_ref"] == ref
    assert theirs.status_code == 404 and other_county.status_code == 404
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "referral_kind"
    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    assert late_accept.status_code == 409 and late_accept.json()["code"] == "illegal_transition"
