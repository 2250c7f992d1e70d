"""Search and suggestion quality on the labelled set (200 typical cases, 40 queries with
known relevant cases): the figures the benchmark reports, held to a floor."""

from __future__ import annotations

import pytest

from devkit.library_labelled import build_index, evaluate, load_cases, load_queries
from tiaojie.contracts.common import Category
from tiaojie.contracts.library import Technique
from tiaojie.library.search import Filters, SearchIndex

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def index() -> SearchIndex:
    return build_index(load_cases())


def test_the_labelled_set_is_what_it_claims() -> None:
    cases, queries = load_cases(), load_queries()
    assert len(cases) >= 200 and len(queries) >= 40
    ids = {c["id"] for c in cases}
    assert len(ids) == len(cases)
    assert len({c["category"] for c in cases}) >= 18
    for q in queries:
        assert len(q["relevant"]) == 5 and set(q["relevant"]) <= ids
        # A query is not a copy of a case: it must be found through shared terms, not verbatim.
        assert all(q["text"] not in c["summary"] for c in cases)


def test_suggestions_and_search_reach_their_precision_at_5(index: SearchIndex) -> None:
    suggestions, search = evaluate(index, load_queries())
    print(f"suggestions P@5 {suggestions.precision_at_5:.3f} MRR {suggestions.mrr:.3f}")
    print(f"search P@5 {search.precision_at_5:.3f} MRR {search.mrr:.3f}")
    assert suggestions.precision_at_5 >= 0.8
    assert search.precision_at_5 >= 0.75
    assert suggestions.mrr >= 0.9
    # The category helps: suggestions are at least as good as text alone.
    assert suggestions.precision_at_5 >= search.precision_at_5


def test_filters_narrow_the_results_exactly(index: SearchIndex) -> None:
    cases = load_cases()
    page = index.search("赔偿", Filters(category=Category.ROAD_TRAFFIC), limit=50)
    assert page.total > 0 and all(h.category == "road_traffic" for h in page.hits)
    expected = {c["id"] for c in cases if "judicial_confirmation" in c["techniques"] and c["year"] == 2023}
    page = index.search("", Filters(techniques=(Technique.JUDICIAL_CONFIRMATION,), year=2023), limit=50)
    assert {h.entry_id for h in page.hits} == expected and page.total == len(expected)
    both = index.search("", Filters(techniques=(Technique.BACK_TO_BACK, Technique.INSTALMENTS)), limit=100)
    assert {h.entry_id for h in both.hits} == {
        c["id"] for c in cases if {"back_to_back", "instalments"} <= set(c["techniques"])
    }


def test_a_suggestion_says_why(index: SearchIndex) -> None:
    hits = index.similar(
        "包工头拖欠工人工资不给，工人要去工地堵门",
        category=Category.LABOUR,
        techniques=(Technique.BACK_TO_BACK,),
    )
    assert len(hits) == 5
    top = hits[0]
    assert top.category == "labour" and "back_to_back" in top.techniques
    assert {"包工头", "工资"} & set(top.shared_terms)
