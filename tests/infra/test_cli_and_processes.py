"""The `tiaojie` CLI and the process bookkeeping that lets `down` stop exactly what `up` started."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jwt
import pytest
import typer
from typer.testing import CliRunner

from tiaojie.contracts.common import Role
from tiaojie.infra import procs
from tiaojie.infra.cli import app, parse_replicas
from tiaojie.runtime.auth import SERVICE_AUDIENCES, verify_token
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.unit


def test_token_command_prints_a_verifiable_token() -> None:
    result = CliRunner().invoke(app, ["token", "--role", "desk", "--county", "371302", "--county", "371311"])
    assert result.exit_code == 0, result.output
    for service in SERVICE_AUDIENCES:  # no --audience: every service (development only)
        principal = verify_token(RuntimeSettings(), result.output.strip(), audience=service)
        assert principal.role == Role.DESK and principal.counties == ["371302", "371311"]


def test_token_command_names_the_audience_it_is_given() -> None:
    result = CliRunner().invoke(app, ["token", "--role", "desk", "--county", "371302", "--audience", "stats"])
    assert result.exit_code == 0, result.output
    assert verify_token(RuntimeSettings(), result.output.strip(), audience="stats").role == Role.DESK
    with pytest.raises(jwt.InvalidAudienceError):
        verify_token(RuntimeSettings(), result.output.strip(), audience="intake")
    unknown = CliRunner().invoke(app, ["token", "--role", "desk", "--audience", "console"])
    assert unknown.exit_code != 0


def test_token_command_refuses_an_unknown_role() -> None:
    result = CliRunner().invoke(app, ["token", "--role", "emperor", "--county", "371302"])
    assert result.exit_code != 0


def test_replica_spec() -> None:
    counts = parse_replicas("intake=3, registry=2")
    assert counts["intake"] == 3 and counts["registry"] == 2 and counts["stats"] == 1
    for bad in ("intake=0", "nosuch=2", "intake=x", "intake=10"):
        with pytest.raises(typer.BadParameter):
            parse_replicas(bad)


def test_stop_signals_only_the_process_it_started(tmp_path: Path) -> None:
    marker = f"tiaojie-test-{tmp_path.name}"
    started = procs.start(
        tmp_path,
        "sleeper",
        [sys.executable, "-c", "import time; time.sleep(60)", marker],
        log=tmp_path / "sleeper.log",
        marker=marker,
    )
    assert procs.running(tmp_path, "sleeper") == started
    # A pid file whose process is something else (pid reuse) must not be signalled.
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "impostor.json").write_text(
            f'{{"pid": {stranger.pid}, "marker": "{marker}-impostor", "log": "x"}}'
        )
        assert procs.running(tmp_path, "impostor") is None
        assert procs.stop(tmp_path, "impostor") is False
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
    assert procs.stop(tmp_path, "sleeper", timeout=5) is True
    assert procs.running(tmp_path, "sleeper") is None
    assert not (tmp_path / "sleeper.json").exists()
