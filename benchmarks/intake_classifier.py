"""Accuracy of intake's category classifier on the labelled descriptions, per category.

    uv run python benchmarks/intake_classifier.py [--errors] [--half even|odd|all]

The lexicon and the labelled set were written by the same hand in the same session, so
the figure on them is optimistic; `--half demo` measures on the demo generator's
templates (tiaojie.infra.synthetic, written independently) as a check.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # devkit, shared with the tests

from devkit.intake_labelled import evaluate, load
from tiaojie.contracts.common import CATEGORY_LABELS, Category
from tiaojie.intake.classifier import Classifier


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--errors", action="store_true", help="print every misclassified description")
    parser.add_argument(
        "--half",
        choices=("all", "even", "odd", "demo"),
        default="all",
        help="demo: the demo generator's templates, written by someone else (an independent check)",
    )
    args = parser.parse_args()
    classifier = Classifier()
    started = time.perf_counter()
    classifier.warm_up()
    warm = time.perf_counter() - started
    rows = load(args.half)
    started = time.perf_counter()
    total, right, errors = evaluate(classifier, rows)
    elapsed = time.perf_counter() - started
    print(f"{'category':<24}{'label':<8}{'n':>4}{'right':>7}{'accuracy':>10}")
    for category in Category:
        n = total[category]
        if n:
            label = CATEGORY_LABELS[category]
            print(f"{category:<24}{label:<8}{n:>4}{right[category]:>7}{right[category] / n:>10.1%}")
    n_all, right_all = sum(total.values()), sum(right.values())
    print(f"{'all':<32}{n_all:>4}{right_all:>7}{right_all / n_all:>10.1%}")
    print(f"segmenter warm-up {warm:.2f} s; {elapsed / n_all * 1000:.2f} ms per description")
    if args.errors:
        for label, got, text, evidence in errors:
            print(f"[{label} -> {got}] {text}  {evidence}")


if __name__ == "__main__":
    main()
