"""The case library's labelled set (tests/data/library_*.jsonl) and its measures:
precision@5, recall@5 and MRR of suggestions and of search. Used by the quality tests and
by benchmarks/library/quality.py, which prints the report.

Each query is a new dispute described in a mediator's words; its relevant cases are the
five typical cases of the same kind (benchmarks/library/labelled_set.py wrote them).
Suggestions rank with the open case's category (as intake's CaseRegistered gives it);
search ranks by the text alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tiaojie.contracts.common import CaseStatus, Category
from tiaojie.contracts.library import EntryPublished, EntryStatus, Technique
from tiaojie.library.search import Filters, SearchIndex, Segmented

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"


@dataclass(frozen=True)
class Scores:
    precision_at_5: float
    recall_at_5: float
    mrr: float
    per_query: dict[str, float]


def load_cases() -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in (DATA / "library_cases.jsonl").read_text(encoding="utf-8").splitlines()
    ]


def load_queries() -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in (DATA / "library_queries.jsonl").read_text(encoding="utf-8").splitlines()
    ]


def published(case: dict[str, Any]) -> EntryPublished:
    at = datetime(case["year"], 6, 1, tzinfo=UTC)
    return EntryPublished(
        entry_id=case["id"],
        version=1,
        county="371302",
        category=Category(case["category"]),
        status=EntryStatus.PUBLISHED,
        at=at,
        by="bureau",
        title=f"{case['id']}",
        summary=case["summary"],
        process=case["process"],
        result=case["result"],
        techniques=[Technique(t) for t in case["techniques"]],
        outcome=CaseStatus(case["outcome"]),
        year=case["year"],
        published_at=at,
    )


def build_index(cases: list[dict[str, Any]]) -> SearchIndex:
    index = SearchIndex()
    index.load([Segmented.of(published(c)) for c in cases])
    return index


def score(ranked: dict[str, list[str]], queries: list[dict[str, Any]]) -> Scores:
    per_query, recalls, rr = {}, [], []
    for q in queries:
        top = ranked[q["id"]][:5]
        relevant = set(q["relevant"])
        hits = [i for i in top if i in relevant]
        per_query[q["id"]] = len(hits) / 5
        recalls.append(len(hits) / len(relevant))
        first = next((n for n, i in enumerate(top, start=1) if i in relevant), None)
        rr.append(1 / first if first else 0.0)
    n = len(queries)
    return Scores(sum(per_query.values()) / n, sum(recalls) / n, sum(rr) / n, per_query)


def evaluate(index: SearchIndex, queries: list[dict[str, Any]]) -> tuple[Scores, Scores]:
    suggested = {
        q["id"]: [h.entry_id for h in index.similar(q["text"], category=Category(q["category"]), limit=5)]
        for q in queries
    }
    searched = {
        q["id"]: [h.entry_id for h in index.search(q["text"], Filters(), limit=5).hits] for q in queries
    }
    return score(suggested, queries), score(searched, queries)
