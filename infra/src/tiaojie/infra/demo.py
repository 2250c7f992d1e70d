"""The Linyi demo: a realistic registry and a stream of synthetic disputes.

Linyi (临沂市, 3713) has 12 county-level divisions; their townships come from the
administrative-division data package, not from a hand-typed list. Every id is stable,
so loading twice changes nothing.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import httpx

from tiaojie.contracts import topics
from tiaojie.contracts.common import Category, Channel, Role
from tiaojie.contracts.envelope import new_event
from tiaojie.contracts.intake import DisputeSubmission, DisputeSubmitted
from tiaojie.infra import synthetic
from tiaojie.infra.stack import SERVICES, Infra
from tiaojie.runtime.auth import issue_token, signer_for
from tiaojie.runtime.divisions import Divisions
from tiaojie.runtime.settings import KafkaCredentials, RuntimeSettings

CITY = "3713"
LINYI_COUNTIES = (
    "371302",
    "371311",
    "371312",
    "371321",
    "371322",
    "371323",
    "371324",
    "371325",
    "371326",
    "371327",
    "371328",
    "371329",
)
SHORT = {
    "371302": "兰",
    "371311": "罗",
    "371312": "河",
    "371321": "沂南",
    "371322": "郯",
    "371323": "沂水",
    "371324": "兰陵",
    "371325": "费",
    "371326": "平",
    "371327": "莒南",
    "371328": "蒙",
    "371329": "沭",
}
INDUSTRY = (
    ("medical", "医疗纠纷人民调解委员会", "医调", [Category.MEDICAL]),
    ("traffic", "道路交通事故纠纷人民调解委员会", "交调", [Category.ROAD_TRAFFIC]),
    ("labour", "劳动争议人民调解委员会", "劳调", [Category.LABOUR]),
)


def demo_registry(
    divisions: Divisions, *, seed: int = 3713
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Organisations (parents first) and mediators of the Linyi demo."""
    rng = random.Random(seed)
    orgs: list[dict[str, Any]] = [
        {
            "id": "org-3713-centre",
            "name": "临沂市矛盾纠纷多元化解中心",
            "short_name": "临",
            "kind": "centre",
            "level": "city",
            "county": "371302",
            "division_code": "371300",
            "filed_on": "2023-03-01",
        }
    ]
    mediators: list[dict[str, Any]] = []

    def add_mediators(
        org_id: str, county: str, count: int, grades: list[str], specialties: list[str]
    ) -> None:
        for i in range(count):
            mediators.append(
                {
                    "id": f"med-{org_id.removeprefix('org-')}-{i + 1}",
                    "name": synthetic.person_name(rng),
                    "id_number": synthetic.id_number(rng, county),
                    "county": county,
                    "organisation_ids": [org_id],
                    "full_time": i < max(1, count // 2),
                    "grade": grades[i % len(grades)],
                    "specialties": specialties,
                    "certificate_number": f"LY{county}{rng.randrange(10**6):06d}",
                    "certificate_expires_on": date(
                        2028 + rng.randrange(3), rng.randrange(1, 13), 1
                    ).isoformat(),
                }
            )

    for county in LINYI_COUNTIES:
        name = divisions.name(county) or county
        centre = f"org-{county}-centre"
        orgs.append(
            {
                "id": centre,
                "name": f"{name}矛盾纠纷多元化解中心",
                "short_name": SHORT[county],
                "kind": "centre",
                "level": "county",
                "county": county,
                "division_code": county,
                "parent_id": "org-3713-centre",
                "filed_on": "2023-06-01",
            }
        )
        add_mediators(centre, county, 5, ["1", "2", "2", "3", "3"], [])
        for key, label, short, cats in INDUSTRY:
            org_id = f"org-{county}-{key}"
            orgs.append(
                {
                    "id": org_id,
                    "name": f"{name}{label}",
                    "short_name": f"{SHORT[county]}{short}",
                    "kind": "industry_committee",
                    "level": "county",
                    "county": county,
                    "division_code": county,
                    "parent_id": centre,
                    "categories": [str(c) for c in cats],
                    "filed_on": "2024-01-15",
                }
            )
            add_mediators(org_id, county, 3, ["2", "3", "3"], [str(c) for c in cats])
        for township in divisions.townships_of(county):
            org_id = f"org-{township.code}-tc"
            orgs.append(
                {
                    "id": org_id,
                    "name": f"{township.name}人民调解委员会",
                    "short_name": f"{SHORT[county]}{township.name[:2]}",
                    "kind": "township_committee",
                    "level": "township",
                    "county": county,
                    "division_code": township.code,
                    "parent_id": centre,
                    "filed_on": "2022-09-01",
                }
            )
            add_mediators(org_id, county, 2, ["3", "4"], [])
    return orgs, mediators


def _token(
    settings: RuntimeSettings, *, subject: str, role: Role, counties: Sequence[str], audience: str
) -> str:
    """An operator's token for one service, signed by the issuer's key these settings hold
    (the development key in development)."""
    return issue_token(
        signer_for(settings),
        subject=subject,
        role=role,
        counties=counties,
        audience=audience,
        ttl_seconds=3600,
    )


def load_demo(
    infra: Infra, *, registry_url: str | None = None, settings: RuntimeSettings | None = None
) -> str:
    """File the demo organisations and mediators through the registry's HTTP API."""
    from tiaojie.runtime.divisions import load_divisions

    settings = settings or infra.settings(data_dir=infra.layout.data)
    divisions = load_divisions(str(settings.divisions_path))
    orgs, mediators = demo_registry(divisions)
    url = registry_url or f"http://127.0.0.1:{next(s.port for s in SERVICES if s.name == 'registry')}"
    token = _token(
        settings, subject="demo-loader", role=Role.ADMIN, counties=LINYI_COUNTIES, audience="registry"
    )
    asyncio.run(_post_all(url, token, orgs, mediators))
    return f"{len(orgs)} organisations, {len(mediators)} mediators in {len(LINYI_COUNTIES)} counties"


async def _post_all(
    url: str, token: str, orgs: list[dict[str, Any]], mediators: list[dict[str, Any]]
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        limit = asyncio.Semaphore(8)

        async def post(path: str, body: dict[str, Any]) -> None:
            async with limit:
                response = await client.post(path, json=body)
                if response.status_code >= 300:
                    raise RuntimeError(
                        f"{path} {body.get('id')}: {response.status_code} {response.text[:300]}"
                    )

        # Parents before children: the city centre, the county centres, then the rest.
        levels = [
            [o for o in orgs if o["level"] == "city"],
            [o for o in orgs if o["kind"] == "centre" and o["level"] == "county"],
            [o for o in orgs if o["kind"] != "centre"],
        ]
        for level in levels:
            await asyncio.gather(*(post("/api/v1/organisations", o) for o in level))
        await asyncio.gather(*(post("/api/v1/mediators", m) for m in mediators))


def stream_disputes(
    infra: Infra,
    *,
    rate: float,
    duration: float,
    via: str = "kafka",
    seed: int = 12345,
    intake_url: str | None = None,
    referral_url: str | None = None,
    settings: RuntimeSettings | None = None,
) -> int:
    """Submit synthetic disputes at a steady rate over Kafka (submissions topic, as a
    registered system) or HTTP (as a desk)."""
    settings = settings or infra.settings(data_dir=infra.layout.data)
    from tiaojie.runtime.divisions import load_divisions

    divisions = load_divisions(str(settings.divisions_path))
    rng = random.Random(seed)
    townships = {c: [t.code for t in divisions.townships_of(c)] for c in LINYI_COUNTIES}

    def body() -> dict[str, Any]:
        county = rng.choice(LINYI_COUNTIES)
        return synthetic.submission(
            rng,
            county=county,
            township=rng.choice(townships[county]),
            channel=Channel.SYSTEM if via == "kafka" else Channel.DESK,
        )

    return asyncio.run(
        _stream(
            settings,
            body,
            rate=rate,
            duration=duration,
            via=via,
            intake_url=intake_url,
            referral_url=referral_url,
        )
    )


DEMO_SYSTEM = "demo-grid"


async def system_credential(settings: RuntimeSettings, referral_url: str) -> RuntimeSettings:
    """The demo's grid system, registered at referral like any system that submits
    disputes (a new password each run: the old one is never shown again)."""
    token = _token(
        settings, subject="demo-loader", role=Role.ADMIN, counties=[LINYI_COUNTIES[0]], audience="referral"
    )
    headers = {"Authorization": f"Bearer {token}"}
    body = {
        "id": DEMO_SYSTEM,
        "kind": "system",
        "county": LINYI_COUNTIES[0],
        "name": "兰山区网格化服务管理平台",
    }
    async with httpx.AsyncClient(base_url=referral_url, headers=headers, timeout=60) as client:
        answer = await client.post("/api/v1/agencies", json=body)
        if answer.status_code == 200:  # registered by an earlier run: rotate
            answer = await client.post(f"/api/v1/agencies/{DEMO_SYSTEM}/credentials")
        if answer.status_code >= 300:
            raise RuntimeError(f"registering the demo system: {answer.status_code} {answer.text[:300]}")
    given = KafkaCredentials.of(answer.json()["kafka"], ca_file=settings.kafka_credentials().ca_file)
    return settings.as_principal(given)


async def _stream(
    settings: RuntimeSettings,
    body: Any,
    *,
    rate: float,
    duration: float,
    via: str,
    intake_url: str | None,
    referral_url: str | None,
) -> int:
    from tiaojie.runtime.kafka import EventPublisher, make_broker

    sent = 0
    interval = 1.0 / rate
    start = time.monotonic()
    if via == "kafka":
        port = next(s.port for s in SERVICES if s.name == "referral")
        settings = await system_credential(settings, referral_url or f"http://127.0.0.1:{port}")
        broker = make_broker(settings, service="demo-stream")
        await broker.connect()
        publisher = EventPublisher(broker, settings)
        try:
            while time.monotonic() - start < duration:
                data = DisputeSubmitted(submission=DisputeSubmission.model_validate(body()))
                event = new_event(
                    data,
                    source=f"/agencies/{DEMO_SYSTEM}",
                    subject=str(uuid.uuid4()),
                    county=data.submission.county,
                    time=datetime.now(UTC),
                )
                await publisher.publish(topics.SUBMISSIONS, event)
                sent += 1
                await asyncio.sleep(max(0.0, start + sent * interval - time.monotonic()))
        finally:
            await broker.stop()
        return sent
    url = intake_url or "http://127.0.0.1:8001"
    token = _token(settings, subject="demo-desk", role=Role.DESK, counties=LINYI_COUNTIES, audience="intake")
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        while time.monotonic() - start < duration:
            response = await client.post("/api/v1/disputes", json=body())
            response.raise_for_status()
            sent += 1
            await asyncio.sleep(max(0.0, start + sent * interval - time.monotonic()))
    return sent
