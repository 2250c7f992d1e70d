"""An intake service in this process, on the real Kafka and FerretDB, in its own
namespace (so a mesh of the same session never shares its consumer group), with a
manual clock; plus helpers to feed it organisations and build submissions."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from devkit.access import admin_kwargs, as_service
from devkit.namespace import drop_namespace
from tests.support.data import COUNTY, TOWNSHIP, auth
from tiaojie.contracts import topics
from tiaojie.contracts.common import Role
from tiaojie.contracts.envelope import CloudEvent, decode_event
from tiaojie.contracts.registry import OrganisationUpdated
from tiaojie.infra import synthetic
from tiaojie.intake.app import create_app
from tiaojie.intake.service import IntakeService
from tiaojie.intake.settings import IntakeSettings
from tiaojie.runtime.clock import ManualClock
from tiaojie.runtime.settings import RuntimeSettings

CENTRE = f"org-{COUNTY}-centre"
COMMITTEE = f"org-{TOWNSHIP}-tc"
MEDICAL = f"org-{COUNTY}-medical"


@dataclass
class Intake:
    settings: IntakeSettings
    service: IntakeService
    client: httpx.AsyncClient
    clock: ManualClock
    app: Any = None

    def headers(self, role: Role, counties: list[str] | None = None, **claims: Any) -> dict[str, str]:
        return auth(self.settings, role, counties, **claims)

    def client_from(self, address: str) -> httpx.AsyncClient:
        """A client of this app whose requests come from `address` (the peer's IP)."""
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://intake", timeout=30)


def organisation(
    org_id: str, *, kind: str, level: str, division: str, short: str, version: int = 1, **extra: Any
) -> OrganisationUpdated:
    return OrganisationUpdated(
        organisation_id=org_id,
        version=version,
        name=extra.pop("name", f"{short}人民调解委员会"),
        short_name=short,
        kind=kind,  # type: ignore[arg-type]
        level=level,  # type: ignore[arg-type]
        county=extra.pop("county", COUNTY),
        division_code=division,
        **extra,
    )


STANDARD_ORGS = [
    organisation(
        CENTRE,
        kind="centre",
        level="county",
        division=COUNTY,
        short="临兰",
        name="兰山区矛盾纠纷多元化解中心",
    ),
    organisation(
        COMMITTEE,
        kind="township_committee",
        level="township",
        division=TOWNSHIP,
        short="临兰街",
        name="兰山街道人民调解委员会",
    ),
    organisation(
        MEDICAL,
        kind="industry_committee",
        level="county",
        division=COUNTY,
        short="临兰医",
        name="兰山区医疗纠纷人民调解委员会",
        categories=["medical"],
    ),
]


@contextlib.asynccontextmanager
async def running_intake(
    settings: RuntimeSettings, *, suffix: str = "_in", **overrides: Any
) -> AsyncIterator[Intake]:
    """An intake app in this process, in a namespace of its own, with the standard
    organisations projected; `overrides` are intake settings (limits, proxies)."""
    namespace = f"{settings.namespace}{suffix}"
    scoped = settings.model_copy(update={"namespace": namespace})
    own = IntakeSettings(
        **{
            **settings.model_dump(),
            "namespace": namespace,
            "log_json": False,
            **await as_service(scoped, "intake"),
            **overrides,
        }
    )
    clock = ManualClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
    app = create_app(own, clock=clock)
    service: IntakeService = app.state.intake
    try:
        async with app.router.lifespan_context(app):
            for org in STANDARD_ORGS:
                await service.project_organisation(event=org)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://intake", timeout=30) as client:
                yield Intake(settings=own, service=service, client=client, clock=clock, app=app)
    finally:
        await drop_namespace(own)


@pytest.fixture(scope="package")
async def intake(settings: RuntimeSettings) -> AsyncIterator[Intake]:
    async with running_intake(settings) as running:
        yield running


def body(seed: int | str, **overrides: Any) -> dict[str, Any]:
    """A realistic desk submission with parties of its own (distinct per seed)."""
    rng = random.Random(str(seed))
    data = synthetic.submission(rng, county=COUNTY, township=TOWNSHIP)
    data.pop("category")
    return {**data, **overrides}


async def case_events(
    intake: Intake, case_id: str, *, at_least: int, timeout: float = 20
) -> list[CloudEvent]:
    """Every distinct event intake published for a case (read from the start of the topic),
    once at least `at_least` arrived or the time is up: pass one more than expected, with
    a short timeout, to show that nothing more came. Publication is at least once (the
    outbox relay may race the request that wrote the event), so copies of an event are
    counted once, by id, as every consumer does."""
    consumer = AIOKafkaConsumer(
        intake.settings.topic(topics.CASES),
        **admin_kwargs(intake.settings.kafka_bootstrap),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    found: list[CloudEvent] = []
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(found) < at_least and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                for record in records:
                    if record.key == case_id.encode():
                        event = decode_event(record.value)
                        if event.id not in seen:
                            seen.add(event.id)
                            found.append(event)
    finally:
        await consumer.stop()
    return found


def types_of(events: list[CloudEvent]) -> list[str]:
    return [e.type.rsplit(".", 1)[1] for e in events]
