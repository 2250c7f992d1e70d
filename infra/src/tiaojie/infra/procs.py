"""Detached processes with pid files: start, check, and stop exactly what we started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Managed:
    """A process this project started, as recorded in its pid file."""

    name: str
    pid: int
    marker: str  # a string its command line must contain (guards against pid reuse)
    log: str

    @property
    def alive(self) -> bool:
        return process_matches(self.pid, self.marker)


def process_matches(pid: int, marker: str) -> bool:
    """True if pid runs and its command line contains marker."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        state = "?"
    return state != "Z" and marker in cmdline


def pid_file(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.json"


def read(run_dir: Path, name: str) -> Managed | None:
    path = pid_file(run_dir, name)
    try:
        data = json.loads(path.read_text())
        return Managed(name=name, pid=int(data["pid"]), marker=data["marker"], log=data["log"])
    except (OSError, ValueError, KeyError):
        return None


def running(run_dir: Path, name: str) -> Managed | None:
    """The recorded process if it still runs."""
    proc = read(run_dir, name)
    return proc if proc and proc.alive else None


def start(
    run_dir: Path,
    name: str,
    argv: Sequence[str],
    *,
    log: Path,
    marker: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> Managed:
    """Start argv detached (own session), output appended to log, and record it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    command = list(argv)
    if user:
        command = ["runuser", "-u", user, "--", *command]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    pid = proc.pid
    if user:
        pid = _child_of(pid, marker) or pid
    else:
        _recognisable(proc, marker)
    record = Managed(name=name, pid=pid, marker=marker, log=str(log))
    run_dir.mkdir(parents=True, exist_ok=True)
    pid_file(run_dir, name).write_text(
        json.dumps({"pid": record.pid, "marker": marker, "log": str(log), "argv": command})
    )
    return record


def _recognisable(proc: subprocess.Popen[bytes], marker: str, timeout: float = 5.0) -> None:
    """Return once /proc shows the new command line (seen empty for a moment after exec on
    a loaded machine, when running() would call the process gone) or it has exited."""
    deadline = time.monotonic() + timeout
    while not process_matches(proc.pid, marker) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)


def _child_of(parent: int, marker: str, timeout: float = 5.0) -> int | None:
    """runuser forks the real process; find it so that stop() signals the right pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            children = []
        for child in children:
            if process_matches(int(child), marker):
                return int(child)
        if process_matches(parent, marker) and not Path("/proc").joinpath(str(parent)).exists():
            return None
        time.sleep(0.05)
    return None


def stop(run_dir: Path, name: str, *, timeout: float = 20.0, sig: int = signal.SIGTERM) -> bool:
    """Signal the recorded process, wait, then SIGKILL; True if something was stopped."""
    proc = read(run_dir, name)
    pid_file(run_dir, name).unlink(missing_ok=True)
    if proc is None or not proc.alive:
        return False
    try:
        os.kill(proc.pid, sig)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive:
            return True
        time.sleep(0.1)
    try:
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    while proc.alive:
        time.sleep(0.05)
    return True


def kill(run_dir: Path, name: str) -> bool:
    """SIGKILL the recorded process at once (fault tests); the pid file is kept."""
    proc = read(run_dir, name)
    if proc is None or not proc.alive:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    while proc.alive:
        time.sleep(0.02)
    return True


def wait_until(check: Callable[[], bool], *, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


def tail(path: str | Path, lines: int = 30) -> str:
    """Last lines of a log (for error messages when a server fails to start)."""
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
