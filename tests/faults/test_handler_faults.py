"""Faults inside one consumer process: a handler slower than the shutdown grace period, a
poison message, and ten concurrent clients sending one submission."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from devkit.access import admin_for
from tests.faults.consumer_process import FaultProbed
from tests.faults.harness import FaultMesh, http_case_id, report
from tests.support.data import auth, submission
from tests.support.kafka import eventually, produce, read_all
from tiaojie.contracts.common import Role
from tiaojie.contracts.envelope import new_event
from tiaojie.contracts.topics import dlq
from tiaojie.runtime.kafka import ensure_topics
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[2]


def event(n: int) -> bytes:
    return new_event(FaultProbed(n=n), source="/faults", subject=f"k{n}").to_bytes()


def spawn(settings: RuntimeSettings, topic: str, group: str, journal: Path, mode: str, **env: str):
    return subprocess.Popen(
        [sys.executable, "-m", "tests.faults.consumer_process", topic, group, str(journal), mode],
        cwd=ROOT,
        env={
            **os.environ,
            # A harness consumer on a topic of its own: it connects as the administrator.
            **admin_for(settings.kafka_bootstrap).environment(),
            "TIAOJIE_MONGO_URL": settings.mongo_url,
            "TIAOJIE_NAMESPACE": settings.namespace,
            **env,
        },
    )


def journal_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def test_handler_slower_than_the_grace_period_is_redelivered_not_committed(
    fault_settings: RuntimeSettings, tmp_path: Path, unique: str
) -> None:
    topic = f"faults.slow.{unique}.v1"
    await ensure_topics(fault_settings, [topic], partitions=1)
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    proc = spawn(fault_settings, topic, f"slow-{unique}", first, "slow", TIAOJIE_GRACEFUL_TIMEOUT="2")
    try:
        await eventually(lambda: "ready" in journal_lines(first), timeout=60)
        await produce(fault_settings.kafka_bootstrap, fault_settings.topic(topic), [event(1)], key=b"k1")
        await eventually(lambda: "started 1" in journal_lines(first), timeout=60)
        proc.send_signal(15)  # SIGTERM while message 1 is being handled
        assert await asyncio.to_thread(proc.wait, 60) == 0
    finally:
        proc.kill()
    assert "handled 1" not in journal_lines(first)
    again = spawn(fault_settings, topic, f"slow-{unique}", second, "fast")
    try:
        await eventually(lambda: "handled 1" in journal_lines(second), timeout=90)
    finally:
        again.terminate()
        again.wait(30)
    report(
        f"slow handler: first process {journal_lines(first)} (SIGTERM, not committed), "
        f"second process {journal_lines(second)}"
    )


async def test_poison_message_is_retried_with_backoff_then_dead_lettered_without_a_hot_loop(
    fault_settings: RuntimeSettings, tmp_path: Path, unique: str
) -> None:
    topic = f"faults.poison.{unique}.v1"
    await ensure_topics(fault_settings, [topic], partitions=1)
    journal = tmp_path / "journal.log"
    # Backoff 1 s, 2 s, 4 s between the 4 attempts: about 7 s of waiting.
    proc = spawn(
        fault_settings,
        topic,
        f"poison-{unique}",
        journal,
        "poison",
        TIAOJIE_RETRY_ATTEMPTS="4",
        TIAOJIE_RETRY_BASE_DELAY="1",
        TIAOJIE_RETRY_MAX_DELAY="8",
    )
    try:
        await eventually(lambda: "ready" in journal_lines(journal), timeout=60)
        await produce(
            fault_settings.kafka_bootstrap,
            fault_settings.topic(topic),
            [event(-1), event(2)],
            key=b"same-key",
        )
        await eventually(lambda: "attempt -1" in journal_lines(journal), timeout=60)
        cpu_before, wall_before = cpu_seconds(proc.pid), time.monotonic()
        await eventually(lambda: "handled 2" in journal_lines(journal), timeout=60)
        cpu_used, wall = cpu_seconds(proc.pid) - cpu_before, time.monotonic() - wall_before
    finally:
        proc.terminate()
        proc.wait(30)
    attempts = journal_lines(journal).count("attempt -1")
    report(f"poison: {attempts} attempts over {wall:.1f}s wall, {cpu_used:.2f}s CPU")
    assert attempts == 4
    assert wall >= 5, "retries were not spaced by backoff"
    assert cpu_used < 0.5 * wall, "the retries kept a core busy (hot loop)"
    dead = await read_all(fault_settings.kafka_bootstrap, fault_settings.topic(dlq(topic)), expect=1)
    assert dict(dead[0].headers)["x-tiaojie-reason"] == b"handler_failed"
    # The partition kept flowing: message 2 (same key, behind the poison) was handled once.
    assert journal_lines(journal).count("handled 2") == 1


async def test_ten_concurrent_clients_with_one_idempotency_key_make_one_case(fault_mesh: FaultMesh) -> None:
    fm = fault_mesh
    fm.ensure_running()
    own = fm.settings
    key = uuid.uuid4().hex
    headers = {**auth(own, Role.DESK), "Idempotency-Key": key}
    body = submission(random.randrange(10**6))
    fm.ledger.attempted.add(http_case_id("test-desk", key))
    async with httpx.AsyncClient(timeout=30) as client:
        responses = await asyncio.gather(
            *(
                client.post(f"{fm.mesh.url('intake')}/api/v1/disputes", json=body, headers=headers)
                for _ in range(10)
            )
        )
    assert sorted(r.status_code for r in responses) == [200] * 9 + [201], [r.text[:200] for r in responses]
    ids = {r.json()["id"] for r in responses}
    assert ids == {http_case_id("test-desk", key)}
    fm.ledger.acknowledged |= ids
    from pymongo import AsyncMongoClient

    client_db: AsyncMongoClient[dict] = AsyncMongoClient(own.mongo_url)
    try:
        cases = client_db[own.database("tiaojie_intake")]["cases"]
        assert await cases.count_documents({"_id": {"$in": sorted(ids)}}) == 1
    finally:
        await client_db.close()
    report(f"idempotency: 10 clients, statuses {sorted(r.status_code for r in responses)}, 1 case")
