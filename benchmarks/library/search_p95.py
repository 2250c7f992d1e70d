"""Search and suggestion latency over a library of 50,000 published cases; memory of the
index; optionally the start-up load of the index from FerretDB.

The cases are composed from the labelled set's forty kinds (facts, details, process and
result variants, random sums, years, counties, techniques), with filler sentences, so
the vocabulary is that of mediation records. Queries are the labelled set's forty
descriptions, alone and with filters (category, technique, county, outcome, year).

    uv run python benchmarks/library/search_p95.py                      # in-process index
    uv run python benchmarks/library/search_p95.py --from-database      # plus FerretDB load

Figures are printed, never asserted (machines are noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.library.labelled_set import KINDS, _fill

from devkit.library_labelled import load_queries
from tiaojie.contracts.common import CaseStatus, Category
from tiaojie.contracts.library import EntryPublished, EntryStatus, Technique
from tiaojie.library.search import Filters, SearchIndex, Segmented
from tiaojie.library.text import joined, terms

COUNTIES = ["371302", "371311", "371312", "371321", "371322", "371323", "371324", "371325", "371326"]
FILLERS = [
    "调解员多次电话回访，了解双方的想法。",
    "村两委成员也到场做了大量工作。",
    "当事人起初情绪激动，经过耐心劝导逐渐平静下来。",
    "调解过程中调解员注意倾听，尊重双方意见。",
    "双方最终握手言和，表示今后互相体谅。",
    "调解员事先查阅了相关法律规定和类似案例。",
    "考虑到双方长期相处，调解员着重从亲情邻里情入手。",
    "此前双方曾到派出所报警，民警建议通过调解解决。",
    "司法所所长亲自参与了调解。",
    "调解员及时制作了调解笔录，由双方签字确认。",
    "一方年事已高，调解员上门做工作。",
    "协议履行完毕后，调解员进行了回访。",
]


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


_TERMS: dict[str, list[str]] = {}


def _terms(fragment: str) -> list[str]:
    """Terms of a fragment, segmented once: the cases are compositions of fragments, and
    segmentation is paid at publication, not at query time (measured separately)."""
    if fragment not in _TERMS:
        _TERMS[fragment] = terms(fragment)
    return _TERMS[fragment]


def synthetic_case(i: int, rng: random.Random) -> Segmented:
    """A published case of about 500 characters composed from a kind's variants."""
    kind = rng.choice(KINDS)
    summary_parts = [
        _fill(rng.choice(kind.facts), rng),
        *(_fill(d, rng) for d in rng.sample(kind.details, 2)),
        *rng.sample(FILLERS, 4),
    ]
    process_parts = [
        "第1次调解：",
        _fill(kind.process[0], rng),
        *rng.sample(FILLERS, 5),
        "第2次调解：",
        _fill(kind.process[1], rng),
        *rng.sample(FILLERS, 4),
    ]
    result = _fill(rng.choice(kind.result), rng)
    year = rng.randrange(2018, 2027)
    at = datetime(year, 6, 1, tzinfo=UTC)
    techniques = [Technique(t) for t in kind.techniques if rng.random() < 0.8]
    entry = EntryPublished(
        entry_id=f"bench-{i:06d}",
        version=1,
        county=rng.choice(COUNTIES),
        category=Category(kind.category),
        status=EntryStatus.PUBLISHED,
        at=at,
        by="bench",
        title=f"{kind.key}-{i}",
        summary="".join(summary_parts),
        process="".join(process_parts),
        result=result,
        techniques=techniques,
        outcome=CaseStatus.RESOLVED if rng.random() < 0.85 else CaseStatus.FAILED,
        year=year,
        published_at=at,
    )
    summary_terms = [t for part in [entry.title, *summary_parts, result] for t in _terms(part)]
    record_terms = [t for part in process_parts for t in _terms(part)]
    return Segmented(entry=entry, summary_terms=summary_terms, record_terms=record_terms)


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=100)
    return (
        f"n={len(ordered)} p50 {q[49] * 1000:.2f} ms  p95 {q[94] * 1000:.2f} ms  "
        f"p99 {q[98] * 1000:.2f} ms  max {ordered[-1] * 1000:.2f} ms"
    )


def measure(index: SearchIndex, rounds: int, rng: random.Random) -> None:
    queries = load_queries()
    plain, filtered, suggest = [], [], []
    for _ in range(rounds):
        for q in queries:
            started = time.perf_counter()
            index.search(q["text"], Filters(), limit=10)
            plain.append(time.perf_counter() - started)
            filters = Filters(
                category=Category(q["category"]),
                techniques=(rng.choice(list(Technique)),) if rng.random() < 0.3 else (),
                county=rng.choice(COUNTIES) if rng.random() < 0.5 else None,
                outcome=CaseStatus.RESOLVED if rng.random() < 0.3 else None,
                year=rng.randrange(2018, 2027) if rng.random() < 0.3 else None,
            )
            started = time.perf_counter()
            index.search(q["text"], filters, limit=10)
            filtered.append(time.perf_counter() - started)
            started = time.perf_counter()
            index.similar(q["text"], category=Category(q["category"]), limit=5)
            suggest.append(time.perf_counter() - started)
    print(f"search, text only         {percentiles(plain)}")
    print(f"search, text + filters    {percentiles(filtered)}")
    print(f"suggestion (5, category)  {percentiles(suggest)}")


async def load_from_database(cases: list[Segmented], namespace: str) -> None:
    """Store the cases as the service does (published entries with their terms), then time
    the start-up load of a fresh index from the collection."""
    from pymongo import InsertOne

    from tiaojie.library.repository import LibraryRepository
    from tiaojie.library.service import load_published
    from tiaojie.library.settings import LibrarySettings
    from tiaojie.runtime.mongo import bulk_write_chunked, make_client

    settings = LibrarySettings(namespace=namespace)
    client = make_client(settings, app_name="library-bench")
    db = client[settings.database(settings.database_name)]
    repo = LibraryRepository(db)
    try:
        await repo.create_indexes()
        if await repo.entries.count_documents({}) < len(cases):
            started = time.perf_counter()
            ops = [InsertOne(_entry_doc(c)) for c in cases]
            await bulk_write_chunked(repo.entries, ops)
            print(f"stored {len(cases)} entries in FerretDB in {time.perf_counter() - started:.1f} s")
        gc.collect()
        before = rss_mb()
        started = time.perf_counter()
        index = SearchIndex(writer_heap_bytes=settings.index_writer_heap_bytes)
        loaded = await load_published(index, repo.published())
        gc.collect()
        print(
            f"start-up load from FerretDB (as the service does it): {loaded} entries in "
            f"{time.perf_counter() - started:.1f} s; RSS +{rss_mb() - before:.0f} MiB"
        )
    finally:
        await client.drop_database(settings.database(settings.database_name))
        await client.close()


def _entry_doc(case: Segmented) -> dict[str, Any]:
    e = case.entry
    return {
        "_id": e.entry_id,
        "case_id": e.entry_id,
        "county": e.county,
        "status": "published",
        "category": str(e.category),
        "techniques": [str(t) for t in e.techniques],
        "outcome": str(e.outcome),
        "amount_band": str(e.amount_band),
        "year": e.year,
        "title": e.title,
        "summary": e.summary,
        "process": e.process,
        "result": e.result,
        "nominated_by": "bench",
        "nominated_at": e.published_at,
        "published_at": e.published_at,
        "published_by": "bench",
        "history": [],
        "version": 1,
        "summary_terms": joined(case.summary_terms),
        "record_terms": joined(case.record_terms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5, help="passes over the 40 queries")
    parser.add_argument("--from-database", action="store_true", help="also time the load from FerretDB")
    parser.add_argument("--namespace", default="benchlib")
    args = parser.parse_args()
    rng = random.Random(2026)

    sample = [synthetic_case(i, random.Random(i)) for i in range(200)]
    started = time.perf_counter()
    for case in sample:
        Segmented.of(case.entry)
    per_case = (time.perf_counter() - started) / len(sample)
    started = time.perf_counter()
    cases = [synthetic_case(i, rng) for i in range(args.cases)]
    entries = [c.entry for c in cases]
    chars = sum(len(e.summary) + len(e.process) + len(e.result) for e in entries)
    print(
        f"{args.cases} cases composed in {time.perf_counter() - started:.1f} s, "
        f"{chars / args.cases:.0f} characters each on average"
    )
    print(f"segmentation (jieba, paid once at publication): {per_case * 1000:.1f} ms a case")

    gc.collect()
    before = rss_mb()
    started = time.perf_counter()
    index = SearchIndex()
    index.load(cases)
    print(
        f"index built in {time.perf_counter() - started:.1f} s; {index.size} documents; "
        f"RSS +{rss_mb() - before:.0f} MiB (process {rss_mb():.0f} MiB)"
    )
    measure(index, args.rounds, rng)
    if args.from_database:
        del index
        asyncio.run(load_from_database(cases, args.namespace))


if __name__ == "__main__":
    main()
