"""Registration and acceptance throughput of intake's rules on the real servers.

    uv run python benchmarks/intake_throughput.py [--cases 200] [--concurrency 8]

Runs the service in this process (its own namespace, dropped afterwards) against the
Kafka and FerretDB of TIAOJIE_KAFKA_BOOTSTRAP / TIAOJIE_MONGO_URL, registers synthetic
desk submissions, then accepts them all for one organisation (contending for one
case-number counter), and prints latencies and rates. Figures only: nothing asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from typing import Any

from tiaojie.contracts.intake import DisputeSubmission
from tiaojie.contracts.registry import OrganisationUpdated
from tiaojie.infra import synthetic
from tiaojie.infra.stack import Infra
from tiaojie.intake.app import create_app
from tiaojie.intake.service import IntakeService
from tiaojie.intake.settings import IntakeSettings
from tiaojie.runtime.kafka import client_kwargs

COUNTY, TOWNSHIP = "371302", "371302001"


def quantiles(values: list[float]) -> str:
    cuts = statistics.quantiles(values, n=10)
    p50, p90, top = statistics.median(values) * 1000, cuts[8] * 1000, max(values) * 1000
    return f"p50 {p50:.1f} ms, p90 {p90:.1f} ms, max {top:.1f} ms"


async def timed(call: Any, sink: list[float]) -> Any:
    started = time.perf_counter()
    result = await call
    sink.append(time.perf_counter() - started)
    return result


async def run(cases: int, concurrency: int) -> None:
    namespace = "bench" + uuid.uuid4().hex[:8]
    access = await Infra().service_overrides("intake", namespace)
    settings = IntakeSettings(namespace=namespace, log_level="WARNING", **access)  # type: ignore[arg-type]
    app = create_app(settings)
    service: IntakeService = app.state.intake
    limit = asyncio.Semaphore(concurrency)

    async def bounded(call: Any, sink: list[float]) -> Any:
        async with limit:
            return await timed(call, sink)

    try:
        async with app.router.lifespan_context(app):
            await service.project_organisation(
                event=OrganisationUpdated(
                    organisation_id="org-bench",
                    version=1,
                    name="基准测试调委会",
                    short_name="基",
                    kind="township_committee",
                    level="township",
                    county=COUNTY,
                    division_code=TOWNSHIP,  # type: ignore[arg-type]
                )
            )
            rng = random.Random(1)
            bodies = [
                DisputeSubmission.model_validate(synthetic.submission(rng, county=COUNTY, township=TOWNSHIP))
                for _ in range(cases)
            ]
            registered: list[float] = []
            started = time.perf_counter()
            results = await asyncio.gather(
                *(
                    bounded(
                        service.register(submission=b, registered_by="bench", category_authority="desk"),
                        registered,
                    )
                    for b in bodies
                )
            )
            reg_elapsed = time.perf_counter() - started
            created = [r.case.id for r in results if r.created]
            accepted: list[float] = []
            started = time.perf_counter()
            done = await asyncio.gather(
                *(
                    bounded(service.accept(case_id=cid, by="bench", action_id=f"a-{cid}"), accepted)
                    for cid in created
                )
            )
            acc_elapsed = time.perf_counter() - started
            numbers = sorted(int((c.case_number or "").rsplit("第", 1)[1].rstrip("号")) for c in done)
            for label, n, elapsed, sink in (
                ("register", len(results), reg_elapsed, registered),
                ("accept", len(done), acc_elapsed, accepted),
            ):
                print(f"{label:<9}{n} in {elapsed:.1f} s = {n / elapsed:.1f}/s; {quantiles(sink)}")
            print(f"case numbers 1..{len(numbers)} gap-free: {numbers == list(range(1, len(numbers) + 1))}")
    finally:
        await drop(settings)


async def drop(settings: IntakeSettings) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url)
    try:
        await client.drop_database(settings.database(settings.database_name))
    finally:
        await client.close()
    admin = AIOKafkaAdminClient(**client_kwargs(Infra().admin_credentials()))
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(f"{settings.namespace}.")]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(run(args.cases, args.concurrency))


if __name__ == "__main__":
    main()
