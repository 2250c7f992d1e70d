"""Referral: the claim primitive FerretDB offers, and the timers built on it.

    uv run python benchmarks/referral_timers.py [--referrals 300]

Prints (never asserts on time):
1. compare-and-set on FerretDB 1.24: a conditional update_one raced by 12 clients, and a
   unique insert raced the same way — how many rounds had exactly one winner;
2. receive / accept latency of referrals (each a claimed revision plus its timers);
3. a timer sweep with nothing due, then with every referral overdue, run by two replicas
   at once — how many fired, and whether any fired twice.

Uses TIAOJIE_KAFKA_BOOTSTRAP / TIAOJIE_MONGO_URL or the local defaults, in a namespace of
its own that is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from tiaojie.contracts.common import AgencyKind, Channel
from tiaojie.contracts.intake import DisputeSubmission
from tiaojie.contracts.referral import AgencyReferralSubmitted
from tiaojie.contracts.registry import OrganisationUpdated
from tiaojie.infra.stack import Infra
from tiaojie.referral.app import Referral, build
from tiaojie.referral.settings import ReferralSettings
from tiaojie.runtime.clock import ManualClock
from tiaojie.runtime.kafka import client_kwargs, create_physical_topics

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


async def claim_race(url: str, rounds: int = 30, racers: int = 12) -> tuple[int, int]:
    """Rounds with exactly one winner: (conditional update, unique insert)."""
    clients = [AsyncMongoClient(url, maxPoolSize=5) for _ in range(4)]
    name = "bench_claim_" + uuid.uuid4().hex[:6]
    colls = [c[name]["t"] for c in clients]
    updates_ok = inserts_ok = 0
    try:
        for r in range(rounds):
            await colls[0].insert_one({"_id": f"u{r}", "state": "pending"})

            async def update(i: int, r: int = r) -> int:
                done = await colls[i % 4].update_one(
                    {"_id": f"u{r}", "state": "pending"}, {"$set": {"state": "fired", "by": i}}
                )
                return done.modified_count

            async def insert(i: int, r: int = r) -> int:
                try:
                    await colls[i % 4].insert_one({"_id": f"i{r}", "by": i})
                    return 1
                except DuplicateKeyError:
                    return 0

            updates_ok += sum(await asyncio.gather(*(update(i) for i in range(racers)))) == 1
            inserts_ok += sum(await asyncio.gather(*(insert(i) for i in range(racers)))) == 1
    finally:
        await clients[0].drop_database(name)
        for c in clients:
            await c.close()
    return updates_ok, inserts_ok


def organisations() -> list[OrganisationUpdated]:
    return [
        OrganisationUpdated(
            organisation_id="org-371302-centre",
            version=1,
            name="兰山区矛盾纠纷多元化解中心",
            short_name="兰山",
            kind="centre",
            level="county",
            county="371302",
            division_code="371302",
        )
    ]


def data(n: int) -> AgencyReferralSubmitted:
    submission = DisputeSubmission(
        channel=Channel.REFERRAL,
        county="371302",
        description="买卖合同纠纷：拖欠货款。",
        applicants=[{"name": "王某"}],  # type: ignore[list-item]
    )
    return AgencyReferralSubmitted(agency_ref=f"BENCH-{n}", referral_kind="delegation", submission=submission)


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    mean, p50 = statistics.mean(values) * 1000, statistics.median(values) * 1000
    return f"mean {mean:.1f} ms, p50 {p50:.1f}, p95 {p95 * 1000:.1f}"


async def main(count: int) -> None:
    base = ReferralSettings()
    namespace = "bench" + uuid.uuid4().hex[:8]
    access = await Infra().service_overrides("referral", namespace)
    settings = ReferralSettings(namespace=namespace, log_level="WARNING", **access)  # type: ignore[arg-type]
    updates_ok, inserts_ok = await claim_race(base.mongo_url)
    print(
        f"claim race, 30 rounds x 12 racers: conditional update one winner in {updates_ok}/30; "
        f"unique insert one winner in {inserts_ok}/30"
    )
    await create_physical_topics(
        settings, [settings.topic("referral.referrals.v1"), settings.topic("referral.agencies.v1")]
    )
    clock = ManualClock(T0)
    parts: list[Referral] = []
    try:
        for _ in range(2):
            one = build(settings, clock=clock, configure_logs=False)
            await one.repository.create_indexes()
            await one.host.broker.connect()
            for org in organisations():
                await one.service.project_organisation(event=org)
            parts.append(one)
        first, second = parts
        agency, _, _ = await first.service.register_agency(
            agency_id="court-bench",
            kind=AgencyKind.COURT,
            county="371302",
            name="法院",
            source=None,
            by="bench",
        )
        receive, accept = [], []
        ids = []
        for n in range(count):
            t = time.perf_counter()
            doc, _ = await first.service.receive(agency=agency, data=data(n), event_id=None)
            receive.append(time.perf_counter() - t)
            t = time.perf_counter()
            await first.service.accept_referral(referral_id=doc.id, by="bench", counties=["371302"])
            accept.append(time.perf_counter() - t)
            ids.append(doc.id)
        print(f"receive ({count}): {ms(receive)}")
        print(f"accept  ({count}): {ms(accept)}")
        t = time.perf_counter()
        quiet = await first.service.sweep()
        took_quiet = (time.perf_counter() - t) * 1000
        print(f"sweep with {2 * count} timers pending, none due: {took_quiet:.1f} ms, fired {quiet}")
        clock.advance(timedelta(days=45))
        t = time.perf_counter()
        fired = await asyncio.gather(first.service.sweep(), second.service.sweep())
        took = time.perf_counter() - t
        twice = 0
        for rid in ids:
            doc = await first.service.get_referral(rid)
            assert doc is not None
            actions = [h.action for h in doc.history]
            twice += actions.count("handling-overdue") > 1 or actions.count("handling-remind") > 1
        print(
            f"two replicas sweeping {2 * count} due timers: {took:.2f} s "
            f"({2 * count / took:.0f} timers/s), fired {fired[0]} + {fired[1]} = {sum(fired)}, "
            f"fired twice: {twice}"
        )
    finally:
        for one in parts:
            await one.host.broker.stop()
            await one.host.mongo.close()
        client: AsyncMongoClient[dict] = AsyncMongoClient(settings.mongo_url)
        for name in await client.list_database_names():
            if name.startswith(namespace):
                await client.drop_database(name)
        await client.close()
        admin = AIOKafkaAdminClient(**client_kwargs(Infra().admin_credentials()))
        await admin.start()
        try:
            mine = [t for t in await admin.list_topics() if t.startswith(namespace)]
            if mine:
                await admin.delete_topics(mine)
        finally:
            await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--referrals", type=int, default=300)
    asyncio.run(main(parser.parse_args().referrals))
