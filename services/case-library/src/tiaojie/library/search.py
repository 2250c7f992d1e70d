"""The search index of published cases: tantivy (BM25) in memory, fed with jieba terms.

Why tantivy: the database has no text index (DESIGN.md §5) and FerretDB is slow at large
scans, so every replica keeps its own index in memory, built at start-up from the
library's collection and kept current from the library's events (see tail.py). Tantivy
is a maintained embedded engine (the Rust library behind Quickwit) with BM25, boolean
queries, term filters and incremental deletes and adds; its Python binding ships wheels.
Text is segmented by jieba before it reaches tantivy (the `whitespace` tokenizer splits
the joined terms again), so the index and the queries share one notion of a term.

The index is a projection of EntryPublished / EntryWithdrawn: `apply` takes either and is
idempotent by entry version, so the same code rebuilds it from the collection at start-up,
from the topic (a replay), or keeps it current from the tail.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import tantivy

from tiaojie.contracts.common import CaseStatus, Category
from tiaojie.contracts.library import AmountBand, EntryPublished, Technique
from tiaojie.library.text import joined, query_terms, terms

# Weights of the two searched texts: the summary says what the dispute is about, the
# mediation record how it was handled; a match in the summary counts more.
SUMMARY_BOOST = 1.0
RECORD_BOOST = 0.6
# Added to a suggestion's score when it shares the open case's category or technique.
CATEGORY_BOOST = 2.0
TECHNIQUE_BOOST = 0.8


@dataclass(frozen=True)
class Filters:
    category: Category | None = None
    techniques: tuple[Technique, ...] = ()
    county: str | None = None
    outcome: CaseStatus | None = None
    year: int | None = None
    amount_band: AmountBand | None = None


@dataclass(frozen=True)
class Hit:
    entry_id: str
    score: float
    title: str
    category: str
    techniques: list[str]
    county: str
    outcome: str
    year: int
    amount_band: str
    snippet: str
    shared_terms: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Segmented:
    """A published entry with its terms, segmented once when it was published (jieba is the
    slow part of indexing: the collection keeps the terms so a start-up only reads them)."""

    entry: EntryPublished
    summary_terms: list[str]
    record_terms: list[str]

    @classmethod
    def of(cls, entry: EntryPublished) -> Segmented:
        return cls(
            entry=entry,
            summary_terms=terms(f"{entry.title} {entry.summary} {entry.result}"),
            record_terms=terms(entry.process),
        )


@dataclass(frozen=True)
class Page:
    total: int
    hits: list[Hit]


def _schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("summary", stored=False, tokenizer_name="whitespace", index_option="freq")
    sb.add_text_field("record", stored=False, tokenizer_name="whitespace", index_option="freq")
    for name in ("category", "technique", "county", "outcome", "amount_band"):
        sb.add_text_field(name, stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_integer_field("year", stored=True, indexed=True, fast=True)
    sb.add_text_field("title", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_bytes_field("snippet", stored=True, indexed=False)
    # The distinct terms of the case, kept to explain a suggestion (shared terms).
    sb.add_bytes_field("terms", stored=True, indexed=False)
    return sb.build()


def snippet_of(text: str, length: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 1] + "…"


class SearchIndex:
    """One replica's in-memory index. Writes are serialised; reads use a fresh searcher."""

    def __init__(self, *, writer_heap_bytes: int = 50_000_000) -> None:
        self.schema = _schema()
        self._index = tantivy.Index(self.schema)
        self._writer = self._index.writer(heap_size=writer_heap_bytes, num_threads=1)
        self._versions: dict[str, int] = {}
        self._lock = threading.Lock()

    # -- writes -------------------------------------------------------------------------
    def _document(self, case: Segmented) -> tantivy.Document:
        entry, summary_terms, record_terms = case.entry, case.summary_terms, case.record_terms
        doc = tantivy.Document()
        doc.add_text("id", entry.entry_id)
        doc.add_text("summary", joined(summary_terms))
        doc.add_text("record", joined(record_terms))
        doc.add_text("category", str(entry.category))
        for technique in entry.techniques:
            doc.add_text("technique", str(technique))
        doc.add_text("county", entry.county)
        doc.add_text("outcome", str(entry.outcome))
        doc.add_text("amount_band", str(entry.amount_band))
        doc.add_integer("year", entry.year)
        doc.add_text("title", entry.title)
        doc.add_bytes("snippet", snippet_of(entry.summary).encode())
        doc.add_bytes("terms", " ".join(dict.fromkeys(summary_terms + record_terms)).encode())
        return doc

    def apply(self, case: Segmented | None, *, entry_id: str, version: int) -> bool:
        """Index a published entry (or drop a withdrawn one, `entry=None`) unless the index
        already holds this or a newer version; True if the index changed."""
        with self._lock:
            if self._versions.get(entry_id, 0) >= version:
                return False
            self._writer.delete_documents_by_term("id", entry_id)
            if case is not None:
                self._writer.add_document(self._document(case))
            self._writer.commit()
            self._index.reload()
            # Only now: whoever sees this version must find the change in a new searcher.
            self._versions[entry_id] = version
            return True

    def load(self, cases: list[Segmented]) -> int:
        """Bulk-index published entries (start-up): one commit for all of them."""
        added = 0
        with self._lock:
            for case in cases:
                entry = case.entry
                if self._versions.get(entry.entry_id, 0) >= entry.version:
                    continue
                if entry.entry_id in self._versions:
                    self._writer.delete_documents_by_term("id", entry.entry_id)
                self._writer.add_document(self._document(case))
                self._versions[entry.entry_id] = entry.version
                added += 1
            self._writer.commit()
            self._index.reload()
        return added

    def version_of(self, entry_id: str) -> int:
        return self._versions.get(entry_id, 0)

    @property
    def size(self) -> int:
        return int(self._index.searcher().num_docs)

    # -- reads --------------------------------------------------------------------------
    def _filters(self, filters: Filters) -> list[tuple[Any, Any]]:
        must: list[tuple[Any, Any]] = []
        for name, value in (
            ("category", filters.category),
            ("county", filters.county),
            ("outcome", filters.outcome),
            ("amount_band", filters.amount_band),
        ):
            if value:
                must.append((tantivy.Occur.Must, tantivy.Query.term_query(self.schema, name, str(value))))
        for technique in filters.techniques:
            must.append(
                (tantivy.Occur.Must, tantivy.Query.term_query(self.schema, "technique", str(technique)))
            )
        if filters.year:
            must.append((tantivy.Occur.Must, tantivy.Query.term_query(self.schema, "year", filters.year)))
        return must

    def _text_query(self, weighted: list[tuple[str, float]]) -> Any:
        should = []
        for term, weight in weighted:
            for name, boost in (("summary", SUMMARY_BOOST), ("record", RECORD_BOOST)):
                q = tantivy.Query.term_query(self.schema, name, term)
                should.append((tantivy.Occur.Should, tantivy.Query.boost_query(q, boost * weight)))
        return tantivy.Query.boolean_query(should)

    def search(self, text: str, filters: Filters, *, limit: int = 10, offset: int = 0) -> Page:
        """Ranked by BM25 over summary and record; without text, every match of the filters
        (newest year first)."""
        weighted = query_terms(text) if text.strip() else []
        must = self._filters(filters)
        searcher = self._index.searcher()
        if weighted:
            clauses = [(tantivy.Occur.Must, self._text_query(weighted)), *must]
            result = searcher.search(tantivy.Query.boolean_query(clauses), limit, count=True, offset=offset)
        else:
            query = tantivy.Query.boolean_query(must) if must else tantivy.Query.all_query()
            result = searcher.search(query, limit, count=True, order_by_field="year", offset=offset)
        hits = [
            self._hit(searcher, addr, score if weighted else 0.0, weighted) for score, addr in result.hits
        ]
        if weighted:
            hits.sort(key=_rank)  # equal scores in a stable order, whatever the insertion order
        return Page(total=int(getattr(result, "count", 0) or 0), hits=hits)

    def similar(
        self,
        text: str,
        *,
        category: Category | None,
        techniques: tuple[Technique, ...] = (),
        limit: int = 5,
        exclude: set[str] | None = None,
    ) -> list[Hit]:
        """Published cases most like a description: BM25 over its terms, plus a boost for the
        same category and for each shared technique."""
        weighted = query_terms(text) if text.strip() else []
        should: list[tuple[Any, Any]] = []
        if weighted:
            should.append((tantivy.Occur.Should, self._text_query(weighted)))
        if category is not None:
            q = tantivy.Query.term_query(self.schema, "category", str(category))
            should.append((tantivy.Occur.Should, tantivy.Query.const_score_query(q, CATEGORY_BOOST)))
        for technique in techniques:
            q = tantivy.Query.term_query(self.schema, "technique", str(technique))
            should.append((tantivy.Occur.Should, tantivy.Query.const_score_query(q, TECHNIQUE_BOOST)))
        if not should:
            return []
        searcher = self._index.searcher()
        wanted = limit + len(exclude or ())
        result = searcher.search(tantivy.Query.boolean_query(should), wanted, count=False)
        hits = sorted((self._hit(searcher, addr, score, weighted) for score, addr in result.hits), key=_rank)
        return [h for h in hits if h.entry_id not in (exclude or set())][:limit]

    def _hit(self, searcher: Any, addr: Any, score: float, weighted: list[tuple[str, float]]) -> Hit:
        doc = searcher.doc(addr)
        shared: list[str] = []
        if weighted:
            own = set(bytes(doc["terms"][0]).decode().split())
            shared = [t for t, _ in weighted if t in own]
            # The rarest shared terms explain a match best.
            shared.sort(key=lambda t: self._doc_freq(searcher, t))
        return Hit(
            entry_id=doc["id"][0],
            score=round(float(score), 4),
            title=doc["title"][0],
            category=doc["category"][0],
            techniques=list(doc.get_all("technique")),
            county=doc["county"][0],
            outcome=doc["outcome"][0],
            year=int(doc["year"][0]),
            amount_band=doc["amount_band"][0],
            snippet=bytes(doc["snippet"][0]).decode(),
            shared_terms=shared[:8],
        )

    @staticmethod
    def _doc_freq(searcher: Any, term: str) -> int:
        return int(searcher.doc_freq("summary", term)) + int(searcher.doc_freq("record", term))


def _rank(hit: Hit) -> tuple[float, str]:
    return (-hit.score, hit.entry_id)
