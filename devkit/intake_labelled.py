"""Intake's labelled dispute descriptions (tests/data/intake_categories.tsv) and the
classifier's accuracy on them. Used by intake's rule tests and by
benchmarks/intake_classifier.py, which prints the report."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tiaojie.contracts.common import Category
from tiaojie.intake.classifier import Classifier

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "intake_categories.tsv"


def load(half: str = "all") -> list[tuple[Category, str]]:
    rows = []
    for line in DATA.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            code, text = line.split("\t", 1)
            rows.append((Category(code), text))
    if half == "demo":
        from tiaojie.infra.synthetic import TEMPLATES

        return [(category, text) for category, texts in TEMPLATES.items() for text in texts]
    if half == "even":
        return rows[0::2]
    if half == "odd":
        return rows[1::2]
    return rows


def evaluate(
    classifier: Classifier, rows: list[tuple[Category, str]]
) -> tuple[Counter[Category], Counter[Category], list[tuple[Category, Category, str, list[str]]]]:
    total: Counter[Category] = Counter()
    right: Counter[Category] = Counter()
    errors = []
    for label, text in rows:
        got = classifier.classify(text)
        total[label] += 1
        if got.category == label:
            right[label] += 1
        else:
            errors.append((label, got.category, text, got.evidence))
    return total, right, errors
