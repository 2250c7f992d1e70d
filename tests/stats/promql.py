"""Metric names a PromQL expression uses (enough of PromQL for our rules and dashboards)."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "infra" / "prometheus" / "rules"
DASHBOARDS = ROOT / "infra" / "grafana" / "dashboards"
KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "offset",
    "bool",
}
# Series Prometheus itself creates for every target.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def metric_names(expr: str) -> set[str]:
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(
        r"(?<![A-Za-z0-9_:])\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:ms|[smhdwy])?", " ", text
    )  # numbers, durations
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        name = match.group(0)
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or name in KEYWORDS:
            continue  # a function or aggregation
        if name in {"Inf", "NaN", "inf", "nan"}:
            continue
        names.add(name)
    return names


def dashboard_exprs() -> dict[str, list[str]]:
    out = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        out[path.name] = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    return out


def rule_exprs() -> tuple[list[str], set[str]]:
    """Expressions of every rule, and the names recording rules define."""
    exprs: list[str] = []
    recorded: set[str] = set()
    for path in sorted(RULES.glob("*.yml")):
        text = path.read_text(encoding="utf-8")
        exprs += [m.strip() for m in re.findall(r"^\s*expr:\s*(.+)$", text, flags=re.M)]
        recorded |= {m.strip() for m in re.findall(r"^\s*-?\s*record:\s*(.+)$", text, flags=re.M)}
    assert all(not e.startswith(("|", ">")) for e in exprs), "keep rule expressions on one line"
    return exprs, recorded


def family(name: str, families: set[str]) -> bool:
    """True when `name` is a sample name of one of the exposed metric families."""
    if name in families:
        return True
    return any(name.endswith(s) and name[: -len(s)] in families for s in SUFFIXES)
