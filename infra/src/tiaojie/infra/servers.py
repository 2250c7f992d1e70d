"""The three local servers: Apache Kafka (KRaft), PostgreSQL and FerretDB.

Each is fetched or built once into the cache (~/.cache/tiaojie), started detached with
its data under .data/ and its log under .data/logs/, waited for until it really answers,
and stopped by pid file.
"""

from __future__ import annotations

import base64
import os
import pwd
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from tiaojie.infra import procs
from tiaojie.infra.certs import BrokerCertificates, write_certificates
from tiaojie.infra.paths import Layout
from tiaojie.runtime.settings import KafkaCredentials

KAFKA_VERSION = "4.4.0"
FERRETDB_MODULE = "github.com/FerretDB/FerretDB"
FERRETDB_VERSION = "v1.24.2"

KAFKA_PORT = int(os.environ.get("TIAOJIE_KAFKA_PORT", "9092"))
POSTGRES_PORT = int(os.environ.get("TIAOJIE_POSTGRES_PORT", "54329"))
FERRETDB_PORT = int(os.environ.get("TIAOJIE_FERRETDB_PORT", "27017"))
FERRETDB_DEBUG_PORT = FERRETDB_PORT + 10000


class InfraError(RuntimeError):
    """A server could not be fetched, built or started; the message says how to fix it."""


def _run(
    argv: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    what: str,
    stdin: str | None = None,
) -> str:
    proc = subprocess.run(
        argv,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        input=stdin,
    )
    if proc.returncode != 0:
        raise InfraError(f"{what} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


# Principals of the broker itself: `admin` for operators and provisioning, `broker` for the
# broker's own (inter-broker) connections, `controller` on the KRaft controller listener.
BROKER_PRINCIPALS = ("admin", "broker", "controller")


def _jaas(module: str, user: str, password: str, **extra: str) -> str:
    options = " ".join(f'{k}="{v}"' for k, v in {"username": user, "password": password, **extra}.items())
    return f"org.apache.kafka.common.security.{module} required {options};"


@dataclass
class Kafka:
    """Apache Kafka 4.x, single node, KRaft combined mode (broker and controller).

    Clients authenticate with SASL/SCRAM-SHA-512 on 127.0.0.1:port (SASL_PLAINTEXT) or
    port + 2 (SASL_SSL, the certificate signed by the deployment's own CA); the controller
    listener (port + 1) takes only the broker itself (SASL/PLAIN: KRaft controllers cannot
    use SCRAM, whose credentials live in the metadata they serve). The StandardAuthorizer
    refuses everything no ACL allows. Passwords are generated at first start into
    .data/kafka/secrets.json (mode 0600); the SCRAM ones are written into the metadata
    log when the storage is formatted (KIP-900), so the broker never starts open.
    """

    layout: Layout
    port: int = KAFKA_PORT

    name = "kafka"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def tls_port(self) -> int:
        return self.port + 2

    @property
    def tls_bootstrap(self) -> str:
        return f"127.0.0.1:{self.tls_port}"

    @property
    def libs(self) -> Path:
        return self.layout.cache / f"kafka-{KAFKA_VERSION}" / "libs"

    @property
    def data_dir(self) -> Path:
        return self.layout.data / "kafka"

    @property
    def secrets_file(self) -> Path:
        return self.data_dir / "secrets.json"

    @property
    def certificates(self) -> BrokerCertificates:
        return BrokerCertificates(self.data_dir / "tls")

    def secrets(self) -> dict[str, str]:
        """The broker's own passwords, generated on first use (kept mode 0600)."""
        import json
        import secrets as random

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        known: dict[str, str] = {}
        if self.secrets_file.exists():
            known = json.loads(self.secrets_file.read_text())
        missing = [p for p in BROKER_PRINCIPALS if p not in known]
        if missing:
            known.update({p: random.token_urlsafe(24) for p in missing})
            tmp = self.secrets_file.with_suffix(".tmp")
            tmp.touch(mode=0o600)
            tmp.write_text(json.dumps(known, indent=2))
            tmp.replace(self.secrets_file)
        return known

    def admin_credentials(self, *, tls: bool = False) -> KafkaCredentials:
        """How an operator (or the project's provisioning) connects as `admin`."""
        return KafkaCredentials(
            bootstrap=self.tls_bootstrap if tls else self.bootstrap,
            security_protocol="SASL_SSL" if tls else "SASL_PLAINTEXT",
            username="admin",
            password=self.secrets()["admin"],
            ca_file=str(self.certificates.ca) if tls else None,
        )

    def fetch(self) -> None:
        """Resolve the broker's jars with Maven from infra/kafka/pom.xml (cached)."""
        marker = self.libs / ".complete"
        if marker.exists():
            return
        if shutil.which("mvn") is None:
            raise InfraError("Maven (mvn) is needed to fetch Kafka: apt-get install maven")
        if self.libs.exists():
            shutil.rmtree(self.libs)
        self.libs.mkdir(parents=True)
        _run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(self.layout.infra_assets / "kafka" / "pom.xml"),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={self.libs}",
                "-DincludeScope=runtime",
            ],
            what="resolving Kafka jars from Maven Central",
        )
        marker.write_text(KAFKA_VERSION)

    def configure(self) -> Path:
        """Write server.properties (mode 0600: it holds the broker's own passwords) and
        format the storage, with the SCRAM credentials, on first start."""
        secret = self.secrets()
        certs = self.certificates
        if not certs.complete:
            write_certificates(certs.folder, ["127.0.0.1", "localhost"])
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule"
        broker_login = _jaas("scram.ScramLoginModule", "broker", secret["broker"])
        controller_login = _jaas(
            "plain.PlainLoginModule",
            "controller",
            secret["controller"],
            user_controller=secret["controller"],
        )
        props = self.data_dir / "server.properties"
        lines = [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{self.port + 1}",
            f"listeners=SASL_PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.port + 1},"
            f"SASL_SSL://127.0.0.1:{self.tls_port}",
            f"advertised.listeners=SASL_PLAINTEXT://127.0.0.1:{self.port},SASL_SSL://127.0.0.1:{self.tls_port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,"
            "CONTROLLER:SASL_PLAINTEXT",
            "inter.broker.listener.name=SASL_PLAINTEXT",
            # Clients: SCRAM-SHA-512 only. The controller listener: PLAIN, its one user.
            "sasl.enabled.mechanisms=SCRAM-SHA-512",
            "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
            "sasl.mechanism.controller.protocol=PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
            f"listener.name.controller.plain.sasl.jaas.config={controller_login}",
            f"listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config={broker_login}",
            f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={scram} required;",
            "listener.name.sasl_ssl.ssl.keystore.type=PEM",
            f"listener.name.sasl_ssl.ssl.keystore.location={certs.broker}",
            "listener.name.sasl_ssl.ssl.client.auth=none",
            # Authorisation: nothing is allowed that no ACL allows.
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found=false",
            "super.users=User:admin;User:broker;User:controller",
            f"log.dirs={self.data_dir / 'log'}",
            # Topics are created by the project with explicit partition counts.
            "auto.create.topics.enable=false",
            "num.partitions=6",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=12",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "delete.topic.enable=true",
            "log.retention.hours=-1",
            "log.segment.bytes=67108864",
            "",
        ]
        props.touch(mode=0o600)
        props.chmod(0o600)
        props.write_text("\n".join(lines))
        formatted = (self.data_dir / "log" / "meta.properties").exists()
        if formatted and not (self.data_dir / "log" / ".scram").exists():
            raise InfraError(
                f"{self.data_dir} holds a broker formatted without SASL credentials (from an "
                "earlier version of this project); stop it and remove that folder to start afresh"
            )
        if not formatted:
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
            _run(
                [
                    "java",
                    "-cp",
                    f"{self.libs}/*",
                    "kafka.tools.StorageTool",
                    "format",
                    # One argument: a base64 id may begin with '-', which a separate one
                    # would be taken for an option.
                    f"--cluster-id={cluster_id}",
                    "-c",
                    str(props),
                    *(
                        arg
                        for user in ("admin", "broker")
                        for arg in ("--add-scram", f"SCRAM-SHA-512=[name={user},password={secret[user]}]")
                    ),
                ],
                what="formatting Kafka storage",
            )
            (self.data_dir / "log" / ".scram").write_text("SCRAM-SHA-512 admin broker\n")
        return props

    def start(self) -> bool:
        """Start the broker unless it runs; True if this call started it."""
        if procs.running(self.layout.run, self.name):
            return False
        if port_open(self.port):
            raise InfraError(f"port {self.port} is taken by a process this project did not start")
        self.fetch()
        props = self.configure()
        log4j = self.layout.infra_assets / "kafka" / "log4j2.properties"
        procs.start(
            self.layout.run,
            self.name,
            [
                "java",
                "-Xms256m",
                "-Xmx768m",
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={log4j}",
                f"-Dtiaojie.data={self.data_dir}",
                "-cp",
                f"{self.libs}/*",
                "kafka.Kafka",
                str(props),
            ],
            log=self.layout.logs / "kafka.log",
            marker=f"-Dtiaojie.data={self.data_dir}",
        )
        return True

    def wait(self, timeout: float = 90) -> None:
        """Until a metadata request succeeds."""
        from tiaojie.infra.checks import kafka_answers

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if kafka_answers(self.admin_credentials()):
                return
            if not procs.running(self.layout.run, self.name):
                raise InfraError("Kafka exited:\n" + procs.tail(self.layout.logs / "kafka.log"))
            time.sleep(0.5)
        raise InfraError("Kafka did not answer in time:\n" + procs.tail(self.layout.logs / "kafka.log"))

    def stop(self) -> bool:
        return procs.stop(self.layout.run, self.name, timeout=30)


def _postgres_bin() -> Path:
    roots = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), reverse=True)
    if not roots:
        raise InfraError(
            "PostgreSQL server binaries not found; install them with "
            "`apt-get install -y postgresql` (./dev does this on a fresh machine)"
        )
    return roots[0].parent


@dataclass
class Postgres:
    """PostgreSQL: FerretDB's storage backend (see infra/postgres for why not SQLite)."""

    layout: Layout
    port: int = POSTGRES_PORT

    name = "postgres"

    @property
    def data_dir(self) -> Path:
        return self.layout.data / "postgres"

    @property
    def socket_dir(self) -> Path:
        return self.layout.run / "pgsock"

    @property
    def user(self) -> str | None:
        """PostgreSQL refuses to run as root: run it as the `postgres` account then."""
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise InfraError(
                "running as root needs the `postgres` account (apt-get install postgresql)"
            ) from None
        return "postgres"

    def _own(self, path: Path) -> None:
        if self.user:
            entry = pwd.getpwnam(self.user)
            for p in [path, *path.rglob("*")]:
                os.chown(p, entry.pw_uid, entry.pw_gid)

    def init(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        bindir = _postgres_bin()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._own(self.data_dir)
        argv = [
            str(bindir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]
        _run(["runuser", "-u", self.user, "--", *argv] if self.user else argv, what="initdb")

    def start(self) -> bool:
        if procs.running(self.layout.run, self.name):
            return False
        if port_open(self.port):
            raise InfraError(f"port {self.port} is taken by a process this project did not start")
        self.init()
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self._own(self.socket_dir)
        log = self.layout.logs / "postgres.log"
        log.touch()
        self._own(log)
        procs.start(
            self.layout.run,
            self.name,
            [
                str(_postgres_bin() / "postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(self.port),
                "-k",
                str(self.socket_dir),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=500",
                "-c",
                "shared_buffers=256MB",
                # Commits reach the OS before they are acknowledged to FerretDB but are not
                # waited for on disk: a process crash loses nothing, an OS crash the last ms.
                "-c",
                "synchronous_commit=off",
                "-c",
                "log_min_messages=warning",
            ],
            log=log,
            marker=str(self.data_dir),
            user=self.user,
        )
        return True

    def wait(self, timeout: float = 60) -> None:
        bindir = _postgres_bin()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
                capture_output=True,
                check=False,
            )
            if ready.returncode == 0:
                self._prepare_database()
                return
            if not procs.running(self.layout.run, self.name):
                raise InfraError("PostgreSQL exited:\n" + procs.tail(self.layout.logs / "postgres.log"))
            time.sleep(0.3)
        raise InfraError("PostgreSQL did not answer in time")

    def psql(self, sql: str, *, database: str = "postgres") -> str:
        return _run(
            [
                str(_postgres_bin() / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-A",
                "-t",
                "-c",
                sql,
            ],
            what="psql",
        )

    def _prepare_database(self) -> None:
        exists = self.psql("SELECT 1 FROM pg_database WHERE datname = 'ferretdb'").strip()
        if not exists:
            self.psql("CREATE DATABASE ferretdb")
        accelerate = (self.layout.infra_assets / "postgres" / "ferretdb-accelerate.sql").read_text()
        _run(
            [
                str(_postgres_bin() / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                "ferretdb",
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
            ],
            what="installing the FerretDB index companion trigger",
            stdin=accelerate,
        )

    def stop(self) -> bool:
        # SIGINT is PostgreSQL's "fast shutdown": clients are disconnected, data is flushed.
        import signal

        return procs.stop(self.layout.run, self.name, sig=signal.SIGINT, timeout=30)


@dataclass
class FerretDB:
    """FerretDB 1.24 (MongoDB wire protocol) built from the Go module proxy."""

    layout: Layout
    postgres: Postgres
    port: int = FERRETDB_PORT
    debug_port: int = FERRETDB_DEBUG_PORT

    name = "ferretdb"

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    @property
    def binary(self) -> Path:
        return self.layout.cache / f"ferretdb-{FERRETDB_VERSION}" / "ferretdb"

    def build(self) -> None:
        """go mod download the release, then go build it (cached).

        The module zip lacks build/version/version.txt (the release process generates
        it), without which the binary refuses to start; we write the version we built.
        """
        if self.binary.exists():
            return
        if shutil.which("go") is None:
            raise InfraError("Go (>= 1.24) is needed to build FerretDB")
        info = _run(
            ["go", "mod", "download", "-json", f"{FERRETDB_MODULE}@{FERRETDB_VERSION}"],
            what="downloading FerretDB from the Go module proxy",
        )
        import json

        source = Path(json.loads(info)["Dir"])
        work = self.binary.parent / "src"
        if work.exists():
            shutil.rmtree(work)
        shutil.copytree(source, work)
        for path in [work, *work.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
        (work / "build" / "version" / "version.txt").write_text(FERRETDB_VERSION + "\n")
        _run(
            ["go", "build", "-trimpath", "-o", str(self.binary), "./cmd/ferretdb"],
            cwd=work,
            env={"CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"},
            what="building FerretDB",
        )
        shutil.rmtree(work)

    def start(self) -> bool:
        if procs.running(self.layout.run, self.name):
            return False
        if port_open(self.port):
            raise InfraError(f"port {self.port} is taken by a process this project did not start")
        self.build()
        state = self.layout.data / "ferretdb"
        state.mkdir(parents=True, exist_ok=True)
        procs.start(
            self.layout.run,
            self.name,
            [
                str(self.binary),
                "--handler=postgresql",
                f"--postgresql-url=postgres://postgres@127.0.0.1:{self.postgres.port}/ferretdb?pool_max_conns=400",
                f"--listen-addr=127.0.0.1:{self.port}",
                f"--state-dir={state}",
                f"--debug-addr=127.0.0.1:{self.debug_port}",
                "--telemetry=disable",
                "--log-level=warn",
            ],
            log=self.layout.logs / "ferretdb.log",
            marker=f"--state-dir={state}",
            env={"GOGC": os.environ.get("TIAOJIE_FERRETDB_GOGC", "400")},
        )
        return True

    def wait(self, timeout: float = 60) -> None:
        from tiaojie.infra.checks import mongo_answers

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if mongo_answers(self.url):
                return
            if not procs.running(self.layout.run, self.name):
                raise InfraError("FerretDB exited:\n" + procs.tail(self.layout.logs / "ferretdb.log"))
            time.sleep(0.3)
        raise InfraError("FerretDB did not answer in time")

    def stop(self) -> bool:
        return procs.stop(self.layout.run, self.name, timeout=15)
