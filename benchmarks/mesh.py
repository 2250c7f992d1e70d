"""The mesh end to end, measured against raw aiokafka on the same broker in the same run.

    uv run python benchmarks/mesh.py [--burst 3000] [--seconds 20] [--rounds 2] [--replicas intake=2]
                                     [--profile 1000] [--keep]

Phases, interleaved per round so that machine noise hits all of them alike:
  raw-produce   aiokafka producer (acks=all, idempotent) sending DisputeSubmitted CloudEvents
  raw-consume   aiokafka consumer reading them back, parsing envelope + payload (pydantic), committing
  mesh-kafka    the same disputes on intake.submissions.v1, timed until every one is assigned
                (intake registers, registry assigns, stats projects), i.e. the sustained maximum
  mesh-http     disputes POSTed to intake (32 concurrent clients), timed until assigned
  substrate-db  the substrate's own limit for the database: the documents one dispute made the
                mesh write (per collection, the round's inserts and updates per dispute, as
                copies of that collection's own documents, same sizes) inserted raw with
                insert_many in chunks of 100 into scratch collections, as fast as FerretDB takes them
  substrate-kafka  raw produce and consume (parse, commit) of the events one dispute caused on
                the mesh's topics in that round (count per dispute and mean size measured)
Then latency from submission to assignment at 50% and 80% of the measured maximum (throttled,
never unthrottled), CPU microseconds per dispute per service (and its kernel share), peak RSS
per service, and database operations per dispute (FerretDB's own request counters), then by
service and collection (each service's tiaojie_db_commands_total). With --profile N, N more
disputes at the maximum rate with py-spy sampling every service (profiles under .data/bench/).
The run's topics and databases are dropped at the end unless --keep. Everything runs on
uvloop, the services' event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pymongo import AsyncMongoClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devkit.access import deployment as provisioned  # noqa: E402
from devkit.access import register_admin  # noqa: E402
from devkit.mesh import Mesh  # noqa: E402
from devkit.namespace import drop_namespace  # noqa: E402
from devkit.tokens import token as dev_token  # noqa: E402
from tiaojie.contracts import topics  # noqa: E402
from tiaojie.contracts.common import Channel, Role  # noqa: E402
from tiaojie.contracts.envelope import CloudEvent, new_event  # noqa: E402
from tiaojie.contracts.intake import DisputeSubmission, DisputeSubmitted  # noqa: E402
from tiaojie.infra import synthetic  # noqa: E402
from tiaojie.infra.demo import LINYI_COUNTIES, _post_all, demo_registry  # noqa: E402
from tiaojie.infra.servers import FERRETDB_DEBUG_PORT  # noqa: E402
from tiaojie.infra.stack import SERVICES, Infra  # noqa: E402
from tiaojie.runtime.divisions import load_divisions  # noqa: E402
from tiaojie.runtime.kafka import client_kwargs, create_physical_topics  # noqa: E402
from tiaojie.runtime.settings import RuntimeSettings  # noqa: E402

SOURCE = "/bench/grid-system"
DATABASES = {
    "intake": "tiaojie_intake",
    "referral": "tiaojie_referral",
    "registry": "tiaojie_registry",
    "stats": "tiaojie_stats",
    "library": "tiaojie_library",
}


def case_id_of(event: CloudEvent) -> str:
    """The case id intake derives for a Kafka submission (idempotent registration)."""
    from tiaojie.intake.service import case_id_for

    return case_id_for(scope=f"kafka:{event.source}", key=event.id)


@dataclass
class Row:
    phase: str
    round: int
    disputes: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.disputes / self.seconds if self.seconds else 0.0


@dataclass
class Resources:
    cpu_us_per_dispute: dict[str, float] = field(default_factory=dict)
    system_share: dict[str, float] = field(default_factory=dict)  # of a service's CPU, in the kernel
    rss_peak_mb: dict[str, float] = field(default_factory=dict)
    db_ops_per_dispute: float = 0.0
    db_commands: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    substrate: Substrate | None = None


def cpu_seconds(pid: int) -> float:
    return sum(cpu_split(pid))


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


SERVERS = {"ferretdb": "FerretDB", "postgres": "PostgreSQL", "java": "Kafka"}


def server_cpu_seconds() -> dict[str, float]:
    """CPU used so far by the servers' processes (every PostgreSQL backend included; a
    backend that exited takes its share with it, so PostgreSQL is a lower bound)."""
    used = dict.fromkeys(SERVERS.values(), 0.0)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1 : text.rindex(")")]
        if comm in SERVERS:
            used[SERVERS[comm]] += cpu_seconds(int(stat.parent.name))
    return used


def rss_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def samples(url: str, name: str) -> list[Sample] | None:
    """The samples of one metric at a Prometheus endpoint (None if it does not answer)."""
    try:
        text = httpx.get(url, timeout=5).text
    except httpx.HTTPError:
        return None
    return [s for family in text_string_to_metric_families(text) for s in family.samples if s.name == name]


def db_commands(mesh: Mesh) -> Counter[tuple[str, str, str]]:
    """Each service's database commands so far, by (service, collection, command), from
    its own tiaojie_db_commands_total (replicas summed)."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for name, process in mesh.services.items():
        service = name.rsplit("-", 1)[0]
        for sample in samples(f"{process.url}/metrics", "tiaojie_db_commands_total") or []:
            counts[(service, sample.labels["collection"], sample.labels["command"])] += int(sample.value)
    return counts


def db_requests() -> float:
    data_commands = {"find", "insert", "update", "delete", "findAndModify", "aggregate", "count", "getMore"}
    found = samples(f"http://127.0.0.1:{FERRETDB_DEBUG_PORT}/debug/metrics", "ferretdb_client_requests_total")
    if found is None:
        return float("nan")
    return sum(s.value for s in found if s.labels.get("command") in data_commands)


class Disputes:
    """Synthetic disputes over Linyi's real townships."""

    def __init__(self, settings: RuntimeSettings, seed: int = 7) -> None:
        divisions = load_divisions(str(settings.divisions_path))
        self.rng = random.Random(seed)
        self.townships = {c: [t.code for t in divisions.townships_of(c)] for c in LINYI_COUNTIES}

    def body(self, channel: Channel) -> dict[str, Any]:
        county = self.rng.choice(LINYI_COUNTIES)
        return synthetic.submission(
            self.rng, county=county, township=self.rng.choice(self.townships[county]), channel=channel
        )

    def events(self, n: int) -> list[CloudEvent]:
        return [
            new_event(
                DisputeSubmitted(submission=DisputeSubmission.model_validate(self.body(Channel.SYSTEM))),
                source=SOURCE,
                subject=str(uuid.uuid4()),
            )
            for _ in range(n)
        ]


class AssignmentWatch:
    """Follows registry.assignments.v1 and records when each case was assigned."""

    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings
        self.seen: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            self.settings.topic(topics.ASSIGNMENTS),
            **client_kwargs(self.settings),
            auto_offset_reset="latest",
            enable_auto_commit=False,
            group_id=None,
        )
        await self._consumer.start()
        await self._consumer.seek_to_end()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        async for record in self._consumer:
            doc = orjson.loads(record.value)
            if doc.get("type", "").endswith("MediatorAssigned"):
                self.seen.setdefault(doc["data"]["case_id"], time.monotonic())

    async def wait_for(self, case_ids: set[str], timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if case_ids <= self.seen.keys():
                return max(self.seen[c] for c in case_ids)
            await asyncio.sleep(0.05)
        missing = len(case_ids - self.seen.keys())
        raise TimeoutError(f"{missing} of {len(case_ids)} disputes not assigned within {timeout}s")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        if self._consumer:
            await self._consumer.stop()


async def raw_produce(settings: RuntimeSettings, topic: str, values: list[bytes]) -> float:
    producer = AIOKafkaProducer(**client_kwargs(settings), acks="all", enable_idempotence=True, linger_ms=2)
    await producer.start()
    try:
        t0 = time.monotonic()
        futures = [await producer.send(topic, value, key=str(i).encode()) for i, value in enumerate(values)]
        await asyncio.gather(*futures)
        return time.monotonic() - t0
    finally:
        await producer.stop()


def parse_submission(value: bytes) -> None:
    event = CloudEvent.model_validate(orjson.loads(value))
    DisputeSubmitted.model_validate(event.data)


async def raw_consume(
    settings: RuntimeSettings, topic: str, expect: int, parse: Callable[[bytes], object] = parse_submission
) -> float:
    """Seconds to read `expect` records back, parsing each and committing per batch."""
    consumer = AIOKafkaConsumer(
        topic,
        **client_kwargs(settings),
        group_id=f"raw-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        t0 = time.monotonic()
        got = 0
        while got < expect:
            batch = await consumer.getmany(timeout_ms=1000, max_records=500)
            for records in batch.values():
                for record in records:
                    parse(record.value)
                    got += 1
            if batch:
                await consumer.commit()
        return time.monotonic() - t0
    finally:
        await consumer.stop()


@dataclass
class Substrate:
    """What one dispute made the mesh write and publish, measured over a round."""

    writes: dict[tuple[str, str], float] = field(default_factory=dict)  # (service, collection) -> per dispute
    samples: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    events_per_dispute: float = 0.0
    event_bytes: int = 0


async def topic_ends(settings: RuntimeSettings) -> dict[str, int]:
    """The end offset of every partition of the run's contract topics, summed per topic
    (the project creates every topic with `settings.partitions` partitions)."""
    consumer = AIOKafkaConsumer(**client_kwargs(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        names = [settings.topic(t) for t in topics.ALL_TOPICS if t != topics.SUBMISSIONS]
        parts = [TopicPartition(name, p) for name in names for p in range(settings.partitions)]
        ends = await consumer.end_offsets(parts)
        totals: Counter[str] = Counter()
        for tp, end in ends.items():
            totals[tp.topic] += end
        return dict(totals)
    finally:
        await consumer.stop()


async def event_sample(settings: RuntimeSettings, n: int = 200) -> list[bytes]:
    """Recent events of the case topic (the bulk of what a dispute publishes)."""
    consumer = AIOKafkaConsumer(
        settings.topic(topics.CASES), **client_kwargs(settings), auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        got: list[bytes] = []
        while len(got) < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=n)
            if not batch:
                break
            got += [r.value for records in batch.values() for r in records]
        return got[:n]
    finally:
        await consumer.stop()


async def measure_substrate(
    settings: RuntimeSettings, commands: Counter[tuple[str, str, str]], burst: int, published: int
) -> Substrate:
    found = Substrate()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url)
    try:
        for (service, collection, command), count in commands.items():
            if command not in ("insert", "update") or service not in DATABASES or collection == "-":
                continue
            key = (service, collection)
            found.writes[key] = found.writes.get(key, 0.0) + count / burst
        for service, collection in found.writes:
            db = client[settings.database(DATABASES[service])]
            found.samples[(service, collection)] = await db[collection].find({}).limit(50).to_list()
    finally:
        await client.close()
    found.events_per_dispute = published / burst
    sample = await event_sample(settings)
    found.event_bytes = int(statistics.mean(len(v) for v in sample)) if sample else 600
    return found


async def substrate_db(settings: RuntimeSettings, substrate: Substrate, disputes: int) -> float:
    """Seconds to insert, raw, what `disputes` disputes made the mesh write."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url)
    db = client[settings.database("bench_substrate")]
    batches: list[tuple[str, list[dict[str, Any]]]] = []
    for (service, collection), per_dispute in substrate.writes.items():
        docs = substrate.samples.get((service, collection)) or [{"x": 0}]
        total = round(per_dispute * disputes)
        rows = [{**docs[i % len(docs)], "_id": uuid.uuid4().hex} for i in range(total)]
        for start in range(0, len(rows), 100):
            batches.append((f"{service}_{collection}", rows[start : start + 100]))
    try:
        for name in {name for name, _ in batches}:
            await db[name].insert_one({"_id": "warm"})
        t0 = time.monotonic()
        await asyncio.gather(*(db[name].insert_many(rows, ordered=False) for name, rows in batches))
        return time.monotonic() - t0
    finally:
        await client.drop_database(db.name)
        await client.close()


async def substrate_kafka(
    settings: RuntimeSettings, topic: str, substrate: Substrate, disputes: int
) -> float:
    """Seconds to produce and then consume (parse, commit) the events `disputes` disputes caused."""
    count = round(substrate.events_per_dispute * disputes)
    payload = orjson.dumps({"specversion": "1.0", "pad": "x" * max(0, substrate.event_bytes - 40)})
    produced = await raw_produce(settings, topic, [payload] * count)
    return produced + await raw_consume(settings, topic, count, parse=orjson.loads)


async def mesh_kafka(
    settings: RuntimeSettings, watch: AssignmentWatch, events: list[CloudEvent], *, rate: float | None = None
) -> tuple[float, list[float]]:
    """Publish to the submissions topic (as fast as possible, or at `rate`/s); returns the time until
    all were assigned and each dispute's submission-to-assignment latency."""
    producer = AIOKafkaProducer(**client_kwargs(settings), acks="all", enable_idempotence=True, linger_ms=2)
    await producer.start()
    sent_at: dict[str, float] = {}
    try:
        t0 = time.monotonic()
        futures = []
        for i, event in enumerate(events):
            if rate:
                await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
            sent_at[case_id_of(event)] = time.monotonic()
            futures.append(
                await producer.send(
                    settings.topic(topics.SUBMISSIONS),
                    event.to_bytes(),
                    key=(event.subject or event.id).encode(),
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    done = await watch.wait_for(set(sent_at), timeout=600)
    return done - t0, [watch.seen[c] - s for c, s in sent_at.items()]


async def mesh_http(
    settings: RuntimeSettings,
    url: str,
    watch: AssignmentWatch,
    disputes: Disputes,
    n: int,
    concurrency: int = 32,
) -> float:
    token = dev_token(
        settings, subject="bench-desk", role=Role.DESK, counties=list(LINYI_COUNTIES), audience="intake"
    )
    case_ids: set[str] = set()
    bodies = [disputes.body(Channel.DESK) for _ in range(n)]
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
        limits=httpx.Limits(max_connections=concurrency),
    ) as client:

        async def post(body: dict[str, Any]) -> None:
            async with limit:
                response = await client.post("/api/v1/disputes", json=body)
                response.raise_for_status()
                case_ids.add(response.json()["id"])

        t0 = time.monotonic()
        await asyncio.gather(*(post(b) for b in bodies))
    done = await watch.wait_for(case_ids, timeout=600)
    return done - t0


class Profiler:
    """py-spy sampling every service process through one phase (--profile): what each
    spends its CPU on, as self time of the innermost frames and time under our own code."""

    def __init__(self, mesh: Mesh, out: Path) -> None:
        self.mesh = mesh
        self.out = out
        self.spies: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self.out.mkdir(parents=True, exist_ok=True)
        for name, process in self.mesh.services.items():
            if process.proc and name.split("-")[0] in PROFILED:
                self.spies[name] = subprocess.Popen(
                    [
                        spy,
                        "record",
                        "-p",
                        str(process.proc.pid),
                        "-r",
                        "100",
                        "-f",
                        "raw",
                        "--nonblocking",
                        "-o",
                        str(self.out / f"{name}.txt"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )

    def stop(self) -> None:
        for spy in self.spies.values():
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        for spy in self.spies.values():
            spy.wait(timeout=60)

    def report(self, top: int = 8) -> str:
        parts = []
        for name in self.spies:
            path = self.out / f"{name}.txt"
            if not path.exists():
                parts.append(f"{name}: no profile written")
                continue
            leaves: Counter[str] = Counter()
            ours: Counter[str] = Counter()
            total = 0
            for line in path.read_text().splitlines():
                stack, _, count = line.rpartition(" ")
                if not stack or not count.isdigit():
                    continue
                n = int(count)
                frames = stack.split(";")
                total += n
                leaves[_short(frames[-1])] += n
                for frame in set(frames):
                    if _ours(frame):
                        ours[_short(frame)] += n
            if not total:
                continue
            rows = [[f"{100 * n / total:.1f}%", f] for f, n in leaves.most_common(top)]
            mine = [[f"{100 * n / total:.1f}%", f] for f, n in ours.most_common(top)]
            parts.append(f"{name}: {total} samples on CPU\n" + table(["self", "innermost frame"], rows))
            if mine:
                parts.append(table(["under", "our frame"], mine))
        return "\n\n".join(parts)


PROFILED = ("intake", "registry", "stats", "referral", "library")
OUR_PACKAGES = (*PROFILED, "runtime", "contracts")


def _ours(frame: str) -> bool:
    """py-spy names files relative to sys.path ('intake/service.py'), or in full."""
    where = frame.partition(" (")[2]
    return "/tiaojie/" in where or where.split("/", 1)[0] in OUR_PACKAGES


def _short(frame: str) -> str:
    """'func (/long/path/site-packages/pkg/mod.py:12)' -> 'func (pkg/mod.py:12)'."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path, _, line = where.rpartition(":")
    tail = "/".join(Path(path).parts[-2:]) if path else where
    return f"{name} ({tail}:{line})" if line else f"{name} ({tail})"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    return "\n".join([line, rule, *body])


async def run(args: argparse.Namespace) -> None:
    infra = Infra()
    await asyncio.to_thread(infra.up)  # sync, and it runs event loops of its own
    namespace = "bench" + uuid.uuid4().hex[:6]
    settings = infra.settings(namespace=namespace)  # the benchmark's own clients: the admin
    register_admin(infra.admin_credentials())
    deployment = await provisioned(settings)  # each service process: its own principal
    scratch = settings.topic("bench.raw.v1")
    replicas = {s.name: 1 for s in SERVICES}
    for part in filter(None, args.replicas.split(",")):
        name, _, count = part.partition("=")
        replicas[name] = int(count)

    mesh = Mesh(settings=settings, deployment=deployment, log_dir=ROOT / ".data" / "bench" / namespace)
    for spec in SERVICES:
        for replica in range(replicas[spec.name]):
            mesh.add(spec, replica=replica, extra_env={"TIAOJIE_LOG_LEVEL": "WARNING"}).start()
    for process in mesh.services.values():
        process.wait_ready()
    orgs, mediators = demo_registry(load_divisions(str(settings.divisions_path)))
    for m in mediators:
        m["capacity"] = 500  # the most allowed: the benchmark measures throughput, not limits
    token = dev_token(
        settings, subject="bench", role=Role.ADMIN, counties=list(LINYI_COUNTIES), audience="registry"
    )
    await _post_all(mesh.url("registry"), token, orgs, mediators)
    await asyncio.sleep(3)  # let intake project the organisations before routing

    disputes = Disputes(settings)
    watch = AssignmentWatch(settings)
    await watch.start()
    rows: list[Row] = []
    profile_report = ""
    resources = Resources()
    try:
        # Warm-up: first messages pay for connections, JIT-less imports and caches.
        await mesh_kafka(settings, watch, disputes.events(200))
        for round_no in range(1, args.rounds + 1):
            await create_physical_topics(settings, [f"{scratch}{round_no}"])
            values = [e.to_bytes() for e in disputes.events(args.burst)]
            rows.append(
                Row(
                    "raw-produce",
                    round_no,
                    args.burst,
                    await raw_produce(settings, f"{scratch}{round_no}", values),
                )
            )
            rows.append(
                Row(
                    "raw-consume",
                    round_no,
                    args.burst,
                    await raw_consume(settings, f"{scratch}{round_no}", args.burst),
                )
            )
            before_split = {
                n: (p.proc.pid, cpu_split(p.proc.pid)) for n, p in mesh.services.items() if p.proc
            }
            before_db = db_requests()
            before_commands = db_commands(mesh)
            before_servers = server_cpu_seconds()
            before_ends = await topic_ends(settings)
            seconds, _ = await mesh_kafka(settings, watch, disputes.events(args.burst))
            rows.append(Row("mesh-kafka", round_no, args.burst, seconds))
            await asyncio.sleep(2)  # the round's last events (stats, library) settle
            published = sum((await topic_ends(settings)).values()) - sum(before_ends.values())
            substrate = await measure_substrate(
                settings, db_commands(mesh) - before_commands, args.burst, published
            )
            rows.append(
                Row("substrate-db", round_no, args.burst, await substrate_db(settings, substrate, args.burst))
            )
            await create_physical_topics(settings, [f"{scratch}{round_no}.events"])
            rows.append(
                Row(
                    "substrate-kafka",
                    round_no,
                    args.burst,
                    await substrate_kafka(settings, f"{scratch}{round_no}.events", substrate, args.burst),
                )
            )
            if round_no == args.rounds:
                resources.substrate = substrate
                resources.db_ops_per_dispute = (db_requests() - before_db) / args.burst
                resources.db_commands = db_commands(mesh) - before_commands
                for name, (pid, (user_before, system_before)) in before_split.items():
                    user_after, system_after = cpu_split(pid)
                    user, system = user_after - user_before, system_after - system_before
                    resources.cpu_us_per_dispute[name] = (user + system) * 1e6 / args.burst
                    resources.system_share[name] = system / (user + system) if user + system else 0.0
                resources.cpu_us_per_dispute.update(
                    {
                        n: (used - before_servers[n]) * 1e6 / args.burst
                        for n, used in server_cpu_seconds().items()
                    }
                )
            http_n = max(200, args.burst // 3)
            rows.append(
                Row(
                    "mesh-http",
                    round_no,
                    http_n,
                    await mesh_http(settings, mesh.url("intake"), watch, disputes, http_n),
                )
            )
        best = max(r.rate for r in rows if r.phase == "mesh-kafka")
        if args.profile:
            profiler = Profiler(mesh, ROOT / ".data" / "bench" / namespace / "profiles")
            profiler.start()
            await mesh_kafka(settings, watch, disputes.events(args.profile))
            profiler.stop()
            profile_report = profiler.report()
        latency: dict[str, list[float]] = {}
        for share in (0.5, 0.8):
            rate = best * share
            n = max(100, int(rate * args.seconds))
            _, latencies = await mesh_kafka(settings, watch, disputes.events(n), rate=rate)
            latency[f"{int(share * 100)}% ({rate:.0f}/s)"] = latencies
        for name, process in mesh.services.items():
            if process.proc:
                resources.rss_peak_mb[name] = rss_peak_mb(process.proc.pid)
    finally:
        await watch.stop()
        mesh.stop_all()
        if not args.keep:
            await drop_namespace(settings)

    raw_produce_rate = statistics.median(r.rate for r in rows if r.phase == "raw-produce")
    raw_consume_rate = statistics.median(r.rate for r in rows if r.phase == "raw-consume")
    raw_pipe = min(raw_produce_rate, raw_consume_rate)
    substrate_rate = min(
        statistics.median(r.rate for r in rows if r.phase == "substrate-db"),
        statistics.median(r.rate for r in rows if r.phase == "substrate-kafka"),
    )
    print(
        f"\nmachine: {platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"uvloop {uvloop.__version__}, namespace {namespace}, replicas {args.replicas or 'one each'}\n"
    )
    print(
        table(
            [
                "phase",
                "round",
                "disputes",
                "seconds",
                "disputes/s",
                "ratio to raw pipe",
                "ratio to substrate",
            ],
            [
                [
                    r.phase,
                    str(r.round),
                    str(r.disputes),
                    f"{r.seconds:.2f}",
                    f"{r.rate:.0f}",
                    f"{r.rate / raw_pipe:.3f}",
                    f"{r.rate / substrate_rate:.3f}",
                ]
                for r in rows
            ],
        )
    )
    if resources.substrate is not None:
        sub = resources.substrate
        print(
            f"\nsubstrate limit {substrate_rate:.0f} disputes/s: per dispute the mesh wrote "
            f"{sum(sub.writes.values()):.1f} documents in {len(sub.writes)} collections and published "
            f"{sub.events_per_dispute:.1f} events of about {sub.event_bytes} bytes"
        )
    print()
    print(
        table(
            ["load (share of mesh max)", "p50 ms", "p95 ms", "p99 ms", "n"],
            [
                [
                    k,
                    f"{percentile(v, 0.5) * 1000:.0f}",
                    f"{percentile(v, 0.95) * 1000:.0f}",
                    f"{percentile(v, 0.99) * 1000:.0f}",
                    str(len(v)),
                ]
                for k, v in latency.items()
            ],
        )
    )
    print()
    print(
        table(
            ["service", "CPU µs per dispute", "of it in the kernel", "peak RSS MB"],
            [
                [
                    n,
                    f"{resources.cpu_us_per_dispute.get(n, float('nan')):.0f}",
                    f"{resources.system_share[n]:.0%}" if n in resources.system_share else "–",
                    f"{resources.rss_peak_mb.get(n, 0):.0f}",
                ]
                for n in [*mesh.services, *SERVERS.values()]
            ],
        )
    )
    print(f"\ndatabase operations per dispute (all services): {resources.db_ops_per_dispute:.1f}\n")
    print(
        table(
            ["service", "collection", "command", "per dispute"],
            [
                [service, collection, command, f"{count / args.burst:.2f}"]
                for (service, collection, command), count in sorted(
                    resources.db_commands.items(), key=lambda item: -item[1]
                )
                if count / args.burst >= 0.05
            ],
        )
    )
    if args.profile:
        print(f"\nprofile (py-spy, {args.profile} disputes at the maximum rate):\n")
        print(profile_report)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--burst", type=int, default=2000, help="disputes per throughput phase")
    parser.add_argument("--seconds", type=float, default=15, help="length of each throttled latency phase")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--replicas", default="", help="e.g. intake=2,registry=2")
    parser.add_argument(
        "--keep", action="store_true", help="keep the run's topics and databases (dropped by default)"
    )
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="then profile the services over N more disputes"
    )
    # The raw baselines run on the services' event loop, so the ratio compares like with like.
    uvloop.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
