"""`tiaojie hotspots detect|generate` as a user runs them."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tiaojie.infra.cli import app

pytestmark = pytest.mark.unit
runner = CliRunner()


def test_generate_then_detect_prints_alerts_as_csv(
    tmp_path: Path, divisions_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIAOJIE_DIVISIONS_DIR", str(divisions_dir))
    counts, planted = tmp_path / "counts.csv", tmp_path / "outbreaks.csv"
    made = runner.invoke(
        app,
        [
            "hotspots",
            "generate",
            "--out",
            str(counts),
            "--first",
            "2025-01-01",
            "--last",
            "2025-12-31",
            "--outbreaks",
            str(planted),
        ],
    )
    assert made.exit_code == 0, made.output
    for method in ("nbcusum", "c2"):
        result = runner.invoke(
            app, ["hotspots", "detect", "--counts", str(counts), "--method", method, "--since", "2025-07-01"]
        )
        assert result.exit_code == 0, result.output
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert list(rows[0]) == ["date_detected", "county", "township", "category", "method", "score"]
        assert {r["method"] for r in rows} == {method}
        assert all(r["date_detected"] >= "2025-07-01" for r in rows)
        assert all(float(r["score"]) > 0 for r in rows)
    # The planted outbreaks show up: most of those in the second half have an alarm nearby.
    outbreaks = [o for o in csv.DictReader(planted.open()) if o["start"] >= "2025-07-01"]
    alarms = list(
        csv.DictReader(
            io.StringIO(
                runner.invoke(
                    app, ["hotspots", "detect", "--counts", str(counts), "--since", "2025-07-01"]
                ).stdout
            )
        )
    )
    hit = sum(
        any(
            a["county"] == o["county"]
            and a["category"] == o["category"]
            and o["start"] <= a["date_detected"] <= o["end"]
            and (a["township"] == "" or a["township"] in o["townships"].split())
            for a in alarms
        )
        for o in outbreaks
    )
    assert hit >= len(outbreaks) // 3


def test_detect_refuses_a_bad_file_with_a_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("date,county,count\n2026-01-01,371302,3\n")
    result = runner.invoke(app, ["hotspots", "detect", "--counts", str(bad)])
    assert result.exit_code == 2 and "missing columns: township, category" in result.output
    bad.write_text("date,county,township,category,count\n2026-13-01,371302,371302001,labour,3\n")
    result = runner.invoke(app, ["hotspots", "detect", "--counts", str(bad)])
    assert result.exit_code == 2 and "line 2" in result.output
    unknown = runner.invoke(app, ["hotspots", "detect", "--counts", str(bad), "--method", "magic"])
    assert unknown.exit_code == 2 and "unknown method" in unknown.output
