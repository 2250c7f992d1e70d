"""Real servers for the tests: the local Kafka and FerretDB, testcontainers, or given URLs.

Order of preference: TIAOJIE_KAFKA_BOOTSTRAP and TIAOJIE_MONGO_URL when both are set (with
the broker administrator's TIAOJIE_KAFKA_USERNAME/PASSWORD); otherwise the project's own
local servers (started if needed, stopped again at the end if this session started them),
with MongoDB from testcontainers instead of FerretDB when a Docker engine answers. The
broker is always one with SASL and ACLs on: every test runs against the trust model a
deployment has.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from devkit.access import register_admin
from tiaojie.runtime.settings import KafkaCredentials, RuntimeSettings


@dataclass(frozen=True)
class Servers:
    kafka_bootstrap: str
    mongo_url: str
    how: str
    kafka_admin: KafkaCredentials


def docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return (
            subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False).returncode == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


class ContainersGroupMissing(RuntimeError):
    """A Docker engine answers but the `containers` dependency group is not installed."""


def mongo_container() -> type[Any]:
    """testcontainers' MongoDB container class, from the `containers` dependency group."""
    try:
        from testcontainers.mongodb import MongoDbContainer
    except ImportError as exc:
        raise ContainersGroupMissing(
            "a Docker engine answers, so the tests take MongoDB from testcontainers, but the "
            "`containers` dependency group is not installed: run `uv sync --group containers` "
            "(./dev does when Docker answers), or set TIAOJIE_TESTS_LOCAL=1 to use the local FerretDB"
        ) from exc
    return MongoDbContainer


@contextmanager
def servers() -> Iterator[Servers]:
    kafka, mongo = os.environ.get("TIAOJIE_KAFKA_BOOTSTRAP"), os.environ.get("TIAOJIE_MONGO_URL")
    if kafka and mongo:
        admin = RuntimeSettings().kafka_credentials()
        register_admin(admin)
        yield Servers(kafka, mongo, "given", admin)
        return
    from tiaojie.infra.stack import Infra

    infra = Infra()
    use_containers = docker_engine_answers() and os.environ.get("TIAOJIE_TESTS_LOCAL") != "1"
    started = infra.up(database=not use_containers)
    admin = infra.admin_credentials()
    register_admin(admin)
    try:
        kafka_url, mongo_url = infra.urls
        if use_containers:
            with mongo_container()("mongo:8") as m:
                yield Servers(kafka_url, m.get_connection_url(), "local Kafka, MongoDB container", admin)
            return
        yield Servers(
            kafka_url, mongo_url, "local" + (f" (started {', '.join(started)})" if started else ""), admin
        )
    finally:
        if started and os.environ.get("TIAOJIE_KEEP_SERVERS") != "1":
            infra.down()
