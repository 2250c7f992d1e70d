"""Fault-test harness: a private mesh per test, a steady load, and the ledger that
reconciles every acknowledged input against the databases and the dead-letter topics.

The invariant (DESIGN.md §4): every acknowledged input is in a database or in a DLQ,
exactly once in effect — no lost case, no second case, no double count in stats, no
double assignment, no double load on a mediator.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from devkit.access import deployment
from devkit.mesh import Mesh
from tests.support.data import COUNTY, TOWNSHIP, auth, load_registry
from tests.support.kafka import read_all
from tiaojie.contracts import topics
from tiaojie.contracts.common import Channel, Role
from tiaojie.contracts.envelope import CloudEvent, new_event
from tiaojie.contracts.intake import DisputeSubmission, DisputeSubmitted
from tiaojie.infra import synthetic
from tiaojie.runtime.kafka import client_kwargs
from tiaojie.runtime.settings import RuntimeSettings

ROOT = Path(__file__).resolve().parents[2]
SOURCE = "/faults/grid-system"


def kafka_case_id(event: CloudEvent) -> str:
    from tiaojie.intake.service import case_id_for

    return case_id_for(scope=f"kafka:{event.source}", key=event.id)


def http_case_id(subject: str, key: str) -> str:
    from tiaojie.intake.service import case_id_for

    return case_id_for(scope=f"http:{subject}", key=key)


async def private_mesh(settings: RuntimeSettings, name: str) -> tuple[Mesh, RuntimeSettings]:
    """A mesh in a namespace of its own, with a registry loaded, for one fault test."""
    own = settings.model_copy(update={"namespace": f"{settings.namespace}{name}"})
    mesh = Mesh(
        settings=own,
        deployment=await deployment(own),
        log_dir=ROOT / "test-artifacts" / "logs" / own.namespace,
    )
    mesh.start_all()
    async with httpx.AsyncClient(timeout=30) as client:
        # Room for every case of a long, slow run: 500 is the most one mediator may hold.
        await load_registry(client, mesh.url("registry"), own, capacity=500, per_org=5)
    await asyncio.sleep(2)  # intake projects the organisations before it routes
    return mesh, own


@dataclass
class Ledger:
    """What the load generator was told was accepted, and what it merely attempted."""

    acknowledged: set[str] = field(default_factory=set)
    attempted: set[str] = field(default_factory=set)
    failures: Counter[str] = field(default_factory=Counter)


@dataclass
class FaultMesh:
    """The fault tier's mesh, its settings and the ledger of every test run on it."""

    mesh: Mesh
    settings: RuntimeSettings
    ledger: Ledger

    def ensure_running(self) -> None:
        """Start any process a previous test left stopped (its failure must not cascade)."""
        for process in self.mesh.services.values():
            if process.proc is None or process.proc.poll() is not None:
                process.start()
        for process in self.mesh.services.values():
            process.wait_ready()

    def load(self) -> SteadyLoad:
        """A steady load on the mesh (all of it running first), recorded in the ledger."""
        self.ensure_running()
        return SteadyLoad(self.settings, self.mesh, ledger=self.ledger)

    async def reconciled(self, *, timeout: float = 180) -> Reconciliation:
        """The ledger of every test so far, checked against every store."""
        return await reconcile(self.settings, self.mesh, self.ledger, timeout=timeout)


class SteadyLoad:
    """Submits disputes at a steady rate over Kafka and HTTP until stopped."""

    def __init__(
        self,
        settings: RuntimeSettings,
        mesh: Mesh,
        *,
        ledger: Ledger | None = None,
        rate: float = 6.0,
        seed: int | None = None,
    ) -> None:
        self.settings = settings
        self.mesh = mesh
        self.rate = rate
        # A seed of its own per load: loads on one mesh must not repeat each other's
        # parties (intake would rightly link the repeats to the open cases).
        self.rng = random.Random(seed if seed is not None else uuid.uuid4().int)
        self.ledger = ledger if ledger is not None else Ledger()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.desk = auth(settings, Role.DESK)
        self.subject = "test-desk"

    def body(self, channel: Channel) -> dict[str, Any]:
        return synthetic.submission(self.rng, county=COUNTY, township=TOWNSHIP, channel=channel)

    async def __aenter__(self) -> SteadyLoad:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        self._stop.set()
        if self._task:
            await self._task

    async def _run(self) -> None:
        producer = AIOKafkaProducer(
            **client_kwargs(self.settings),
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=5000,
        )
        started = False
        async with httpx.AsyncClient(timeout=10) as client:
            i = 0
            t0 = time.monotonic()
            pending: set[asyncio.Task[None]] = set()
            while not self._stop.is_set():
                if not started:
                    try:
                        await producer.start()
                        started = True
                    except Exception:
                        self.ledger.failures["producer_start"] += 1
                kind = "kafka" if i % 2 == 0 else "http"
                task = asyncio.create_task(
                    self._one_kafka(producer) if kind == "kafka" and started else self._one_http(client)
                )
                pending.add(task)
                task.add_done_callback(pending.discard)
                i += 1
                await asyncio.sleep(max(0.0, t0 + i / self.rate - time.monotonic()))
            await asyncio.gather(*pending, return_exceptions=True)
        if started:
            await producer.stop()

    async def _one_kafka(self, producer: AIOKafkaProducer) -> None:
        submission = DisputeSubmission.model_validate(self.body(Channel.SYSTEM))
        event = new_event(DisputeSubmitted(submission=submission), source=SOURCE, subject=str(uuid.uuid4()))
        case_id = kafka_case_id(event)
        self.ledger.attempted.add(case_id)
        try:
            await producer.send_and_wait(
                self.settings.topic(topics.SUBMISSIONS), event.to_bytes(), key=(event.subject or "").encode()
            )
            self.ledger.acknowledged.add(case_id)
        except Exception as exc:
            self.ledger.failures[f"kafka:{type(exc).__name__}"] += 1

    async def _one_http(self, client: httpx.AsyncClient) -> None:
        key = uuid.uuid4().hex
        case_id = http_case_id(self.subject, key)
        self.ledger.attempted.add(case_id)
        intake = [p for n, p in self.mesh.services.items() if n.startswith("intake-")]
        process = intake[hash(key) % len(intake)]
        try:
            response = await client.post(
                f"{process.url}/api/v1/disputes",
                json=self.body(Channel.DESK),
                headers={**self.desk, "Idempotency-Key": key},
            )
            if response.status_code in (200, 201):
                # A repeat of an open case is linked to it (intake keeps the link under the
                # id this submission would have had), so the ledger holds our id either way.
                if response.json()["id"] == case_id or response.json().get("linked"):
                    self.ledger.acknowledged.add(case_id)
                else:
                    self.ledger.failures["http:wrong_case_id"] += 1
            else:
                self.ledger.failures[f"http:{response.status_code}"] += 1
        except httpx.HTTPError as exc:
            self.ledger.failures[f"http:{type(exc).__name__}"] += 1


@dataclass
class Reconciliation:
    acknowledged: int
    cases: int
    linked: int
    assigned_cases: int
    registered_decisions: int
    intake_disagrees: list[str]
    stats_received: int
    dead_letters: int
    lost: list[str]
    unexpected: list[str]
    double_assigned: list[str]

    def __str__(self) -> str:
        return (
            f"ledger: acknowledged={self.acknowledged} cases={self.cases} linked={self.linked} "
            f"assigned={self.assigned_cases} registered_decisions={self.registered_decisions} "
            f"intake_disagrees={len(self.intake_disagrees)} stats_received={self.stats_received} "
            f"dead_letters={self.dead_letters} lost={len(self.lost)} unexpected={len(self.unexpected)} "
            f"double_assigned={len(self.double_assigned)}"
        )


async def _ids(collection: Any, query: dict[str, Any] | None = None) -> set[str]:
    return {str(d["_id"]) async for d in collection.find(query or {}, {"_id": 1})}


async def reconcile(
    settings: RuntimeSettings, mesh: Mesh, ledger: Ledger, *, timeout: float = 180
) -> Reconciliation:
    """Wait until the mesh is quiet, then compare the ledger with every store: intake's
    cases and links, the registry's holders and decisions, the assignment events on the
    topic, stats' projection and its summary, and the dead-letter topics."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url, tz_aware=True)
    intake_db = client[settings.database("tiaojie_intake")]
    registry_db = client[settings.database("tiaojie_registry")]
    stats_db = client[settings.database("tiaojie_stats")]
    try:
        deadline = time.monotonic() + timeout
        while True:
            case_ids = await _ids(intake_db["cases"])
            stored = case_ids | await _ids(intake_db["submission_links"])
            held = await _ids(registry_db["cases"], {"holder": {"$ne": None}})
            projected = await _ids(stats_db["cases"], {"received_at": {"$ne": None}})
            if (
                ledger.acknowledged <= stored and case_ids <= held and case_ids <= projected
            ) or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
        await asyncio.sleep(2)  # let stragglers (duplicates, if any) arrive before counting
        case_ids = await _ids(intake_db["cases"])
        links = await _ids(intake_db["submission_links"])
        holders = {
            str(d["_id"]): d["holder"]
            async for d in registry_db["cases"].find({"holder": {"$ne": None}}, {"holder": 1})
        }
        in_intake = {
            str(d["_id"]): d.get("mediator_id") async for d in intake_db["cases"].find({}, {"mediator_id": 1})
        }
        registered = [
            d["case_id"]
            async for d in registry_db["decisions"].find(
                {"trigger": "registered", "outcome": {"$in": ["assigned", "escalated"]}}, {"case_id": 1}
            )
        ]
    finally:
        await client.close()

    # Every decision published, counted by its content: a redelivered or re-relayed event
    # carries the same decision, a second decision for one trigger would not.
    decisions: dict[str, set[tuple[str, str]]] = {}
    for record in await read_all(
        settings.kafka_bootstrap, settings.topic(topics.ASSIGNMENTS), expect=10**9, timeout=5
    ):
        doc = orjson.loads(record.value)
        data = doc["data"]
        if doc["type"].endswith("MediatorAssigned") and data.get("trigger", "registered") == "registered":
            decisions.setdefault(data["case_id"], set()).add((data["mediator_id"], data["assigned_at"]))
    dead = 0
    for topic in (topics.SUBMISSIONS, topics.CASES, topics.ASSIGNMENTS):
        dead += len(
            await read_all(
                settings.kafka_bootstrap, settings.topic(topics.dlq(topic)), expect=10**9, timeout=2
            )
        )
    async with httpx.AsyncClient(timeout=30) as http:
        summary = (
            await http.get(
                f"{mesh.url('stats')}/api/v1/summary", headers=auth(settings, Role.BUREAU, [COUNTY])
            )
        ).json()
    per_case = Counter(registered)
    return Reconciliation(
        acknowledged=len(ledger.acknowledged),
        cases=len(case_ids),
        linked=len(links),
        assigned_cases=len(set(holders) & case_ids),
        registered_decisions=len(registered),
        intake_disagrees=sorted(c for c in case_ids if in_intake.get(c) != holders.get(c)),
        stats_received=int(summary["received"]),
        dead_letters=dead,
        lost=sorted(ledger.acknowledged - case_ids - links),
        unexpected=sorted(case_ids - ledger.attempted),
        double_assigned=sorted(
            {c for c, v in decisions.items() if len(v) > 1} | {c for c, n in per_case.items() if n > 1}
        ),
    )


# Each fault test's figures, shown in the run's summary (tests/faults/conftest.py), so a
# passing CI run still shows every ledger.
REPORT: list[str] = []


def report(line: str) -> None:
    """Print a fault test's figures and keep them for the summary."""
    print(line)
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0].rpartition("::")[2]
    REPORT.append(f"{test}: {line}")


def assert_exactly_once(result: Reconciliation) -> None:
    report(str(result))
    assert result.lost == [], f"acknowledged but lost: {result.lost[:5]}"
    assert result.unexpected == [], f"cases nobody submitted: {result.unexpected[:5]}"
    assert result.cases + result.linked >= result.acknowledged
    assert result.assigned_cases == result.cases, "a case without a mediator"
    assert result.double_assigned == [], f"assigned twice: {result.double_assigned[:5]}"
    assert result.registered_decisions == result.cases, "one assignment decision per case"
    assert result.intake_disagrees == [], f"intake and registry disagree: {result.intake_disagrees[:5]}"
    assert result.stats_received == result.cases, "stats counted a case twice or missed one"
    assert result.dead_letters == 0
