"""The one ruff, mypy and import-linter configuration holds for the whole workspace."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[1]


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_finds_nothing() -> None:
    result = run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout[-4000:]


def test_mypy_finds_nothing() -> None:
    sources = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "services").glob("*/src"))]
    result = run("mypy", "contracts/src", "shared/src", "infra/src", *sources)
    assert result.returncode == 0, result.stdout[-4000:]


def test_import_contracts_hold() -> None:
    # The architecture's import rules ([tool.importlinter] in pyproject.toml): services
    # independent, contracts free of the runtime, runtime and infra free of services.
    # No cache: the tree under test is the truth, and no cache folder is left behind.
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_no_service_module_outgrows_one_idea() -> None:
    # A module over 800 lines has outgrown one idea: split it by idea (issue 14).
    long = {
        str(p.relative_to(ROOT)): n
        for p in sorted(ROOT.glob("services/*/src/**/*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 800
    }
    assert not long, long
