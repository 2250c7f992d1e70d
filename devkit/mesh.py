"""Service processes for end-to-end and fault tests: real processes, own ports, own namespace."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devkit.tokens import process_env
from tiaojie.infra.stack import SERVICES, ServiceSpec
from tiaojie.runtime.access import Deployment
from tiaojie.runtime.settings import RuntimeSettings


def _die_with_parent() -> None:
    """Linux: the service gets SIGTERM when the test process dies (even by SIGKILL), so a
    killed or timed-out test session leaves no service running."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServiceProcess:
    name: str
    module: str
    port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module],
            env={**os.environ, **self.env, "TIAOJIE_PORT": str(self.port)},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.tail()}")
            if self.ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready:\n{self.tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        self.stop(signal.SIGKILL)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Mesh:
    """The services of one test namespace, each a separate OS process."""

    settings: RuntimeSettings
    deployment: Deployment
    log_dir: Path
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    def env(self, service: str) -> dict[str, str]:
        """A service process's environment: its own broker principal (none for the console)
        and its token keys (a service only the issuer's public keys)."""
        s = self.settings
        kafka = self.deployment.environment(service) if service in self.deployment.services else {}
        return {
            **kafka,
            **process_env(s, service),
            "TIAOJIE_MONGO_URL": s.mongo_url,
            "TIAOJIE_NAMESPACE": s.namespace,
            "TIAOJIE_DIVISIONS_DIR": str(s.divisions_path),
            "TIAOJIE_LOG_LEVEL": "INFO",
            "TIAOJIE_OUTBOX_RELAY_INTERVAL": "1",
        }

    def add(
        self, spec: ServiceSpec, *, replica: int = 0, extra_env: dict[str, str] | None = None
    ) -> ServiceProcess:
        name = f"{spec.name}-{replica}"
        process = ServiceProcess(
            name=name,
            module=spec.module,
            port=free_port(),
            env={**self.env(spec.name), "TIAOJIE_REPLICA": str(replica), **(extra_env or {})},
            log=self.log_dir / f"{name}.log",
        )
        self.services[name] = process
        return process

    def start_all(self, names: list[str] | None = None) -> None:
        wanted = [s for s in SERVICES if names is None or s.name in names]
        for spec in wanted:
            extra = self.console_env() if spec.name == "console" else None
            self.add(spec, extra_env=extra).start()
        for process in self.services.values():
            process.wait_ready()

    def console_env(self) -> dict[str, str]:
        """The console calls the others over HTTP: tell it where each one answers."""
        return {
            f"TIAOJIE_{name.upper()}_URL": self.services[f"{name}-0"].url
            for name in ("intake", "referral", "registry", "stats", "library")
            if f"{name}-0" in self.services
        }

    def url(self, service: str, replica: int = 0) -> str:
        return self.services[f"{service}-{replica}"].url

    def stop_all(self) -> None:
        for process in self.services.values():
            process.stop()
