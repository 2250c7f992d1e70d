"""The fault tier runs on servers of its own: it stops and kills them, so it must never
share them with other test sessions (or a developer's running mesh)."""

from __future__ import annotations

import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from devkit.access import register_admin
from tests.faults.harness import REPORT, FaultMesh, Ledger, private_mesh
from tiaojie.infra.paths import Layout
from tiaojie.infra.servers import InfraError
from tiaojie.infra.stack import Infra
from tiaojie.runtime.settings import RuntimeSettings, default_cache_dir

ROOT = Path(__file__).resolve().parents[2]


def _free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def free_ports(count: int, *, consecutive: bool = False) -> list[int]:
    """Ports nobody listens on (Kafka needs three in a row: SASL, controller, SASL_SSL)."""
    found: list[int] = []
    while len(found) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + 2 < 65536 and _free(port) and (not consecutive or (_free(port + 1) and _free(port + 2))):
            found.append(port)
    return found


@pytest.fixture(scope="session")
def fault_infra() -> Iterator[Infra]:
    """Kafka, PostgreSQL and FerretDB started for the fault tests alone, then removed."""
    for attempt in range(3):
        (kafka,) = free_ports(1, consecutive=True)
        postgres, ferretdb, debug = free_ports(3)
        data = ROOT / ".data" / f"faults-{uuid.uuid4().hex[:8]}"
        layout = Layout(root=ROOT, data=data, cache=default_cache_dir())
        infra = Infra(
            layout=layout,
            ports={"kafka": kafka, "postgres": postgres, "ferretdb": ferretdb, "ferretdb_debug": debug},
        )
        try:
            infra.up()
            break
        except InfraError as exc:
            # A port found free can be taken by another process's client socket before the
            # server binds it (CI saw Kafka's controller port go): new ports, once more.
            infra.down()
            shutil.rmtree(data, ignore_errors=True)
            if "Address already in use" not in str(exc) or attempt == 2:
                raise
    try:
        yield infra
    finally:
        infra.down()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def fault_settings(fault_infra: Infra, settings: RuntimeSettings) -> RuntimeSettings:
    """The session's settings on the fault servers, as their broker's administrator."""
    _, mongo = fault_infra.urls
    admin = fault_infra.admin_credentials()
    register_admin(admin)
    return settings.as_principal(admin).model_copy(update={"mongo_url": mongo})


@pytest.fixture(scope="session")
async def fault_mesh(fault_settings: RuntimeSettings) -> AsyncIterator[FaultMesh]:
    """One mesh on the fault servers for every fault test, with one ledger across them:
    each test's reconciliation covers everything acknowledged since the mesh started, so a
    fault that corrupted an earlier test's cases is still caught (and the tier does not pay
    for a mesh start per test)."""
    mesh, own = await private_mesh(fault_settings, "mesh")
    try:
        yield FaultMesh(mesh=mesh, settings=own, ledger=Ledger())
    finally:
        mesh.stop_all()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Every fault test's ledger in the summary: CI shows them even when all pass."""
    if REPORT:
        terminalreporter.section("fault ledgers")
        for line in REPORT:
            terminalreporter.write_line(line)
