"""Category from the description: jieba segmentation plus the curated lexicon.

Explainable on purpose: the answer lists the words that decided it, so a desk user sees
why and can override it. Accuracy is measured on tests/data/intake_categories.tsv
(benchmarks/intake_classifier.py prints the table per category).
"""

from __future__ import annotations

import logging
import threading
import warnings
from dataclasses import dataclass, field

from tiaojie.contracts.common import Category
from tiaojie.intake.lexicon import LEXICON

with warnings.catch_warnings():
    # jieba 0.42's sources hold regex strings Python 3.12 flags when it compiles them.
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", SyntaxWarning)
    import jieba

# Below this share of the evidence, the classifier says it is unsure (the desk decides,
# or a citizen's own choice of category is kept).
CONFIDENT = 0.5


@dataclass(frozen=True)
class Classification:
    category: Category
    confidence: float  # 0..1: share of the evidence times its strength
    evidence: list[str] = field(default_factory=list)  # the lexicon words found
    scores: dict[str, int] = field(default_factory=dict)

    @property
    def confident(self) -> bool:
        return self.confidence >= CONFIDENT


class Classifier:
    """Scores every category by the lexicon words found among the description's words."""

    def __init__(self, lexicon: dict[Category, dict[str, int]] | None = None) -> None:
        self._lexicon = lexicon or LEXICON
        self._terms: dict[str, list[tuple[Category, int]]] = {}
        for category, words in self._lexicon.items():
            for word, weight in words.items():
                self._terms.setdefault(word, []).append((category, weight))
        # Longest first, so that "物业费" is tried before "物业" inside a longer word.
        self._multi = sorted((t for t in self._terms if len(t) > 1), key=len, reverse=True)
        self._tokenizer: jieba.Tokenizer | None = None
        self._lock = threading.Lock()

    def _segmenter(self) -> jieba.Tokenizer:
        # jieba builds its prefix dictionary on first use (about half a second): lazily,
        # once per process, and with our terms so they stay whole.
        with self._lock:
            if self._tokenizer is None:
                jieba.setLogLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                for term in self._terms:
                    tokenizer.add_word(term, freq=2000)
                tokenizer.initialize()
                self._tokenizer = tokenizer
            return self._tokenizer

    def warm_up(self) -> None:
        """Build the segmenter now (at startup) rather than on the first request."""
        self._segmenter()

    def words(self, text: str) -> list[str]:
        return [w for w in self._segmenter().lcut(text, HMM=True) if w.strip()]

    def classify(self, text: str) -> Classification:
        """The most likely category, its confidence and the words that point to it."""
        scores: dict[Category, int] = {}
        evidence: list[str] = []
        for word in self.words(text):
            for term in self._matches(word):
                evidence.append(term)
                for category, weight in self._terms[term]:
                    scores[category] = scores.get(category, 0) + weight
        if not scores:
            return Classification(Category.OTHER, 0.0)
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], list(Category).index(kv[0])))
        best, top = ranked[0]
        share = top / sum(scores.values())
        strength = min(1.0, top / 6)
        return Classification(
            category=best,
            confidence=round(share * strength, 3),
            evidence=list(dict.fromkeys(evidence)),
            scores={str(c): s for c, s in ranked},
        )

    def _matches(self, word: str) -> list[str]:
        """Lexicon terms a segmented word stands for: itself, or the longest term inside it."""
        if word in self._terms:
            return [word]
        for term in self._multi:
            if len(term) < len(word) and term in word:
                return [term]
        return []
