"""Search and suggestion quality on the labelled set (200 cases, 40 queries): prints
precision@5, recall@5 and MRR of suggestions and of search.

    uv run python benchmarks/library/quality.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # devkit, shared with the tests

from devkit.library_labelled import build_index, evaluate, load_cases, load_queries


def main() -> None:
    cases, queries = load_cases(), load_queries()
    index = build_index(cases)
    suggestions, search = evaluate(index, queries)
    print(f"labelled set: {len(cases)} cases, {len(queries)} queries")
    for name, s in (("suggestions (text + category)", suggestions), ("search (text only)", search)):
        print(f"{name:32s} precision@5 {s.precision_at_5:.3f}  recall@5 {s.recall_at_5:.3f}  MRR {s.mrr:.3f}")
    weakest = sorted(suggestions.per_query.items(), key=lambda kv: kv[1])[:5]
    print("weakest suggestion queries:", ", ".join(f"{k} {v:.1f}" for k, v in weakest))


if __name__ == "__main__":
    main()
