"""Real servers for the tests: the local Kafka and FerretDB, testcontainers, or given URLs.

Order of preference: TIAOJIE_KAFKA_BOOTSTRAP and TIAOJIE_MONGO_URL when both are set;
testcontainers when a Docker engine answers; otherwise the project's own local servers
(started if needed and stopped again at the end if this session started them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Servers:
    kafka_bootstrap: str
    mongo_url: str
    how: str


def docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return (
            subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False).returncode == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextmanager
def servers() -> Iterator[Servers]:
    kafka, mongo = os.environ.get("TIAOJIE_KAFKA_BOOTSTRAP"), os.environ.get("TIAOJIE_MONGO_URL")
    if kafka and mongo:
        yield Servers(kafka, mongo, "given")
        return
    if docker_engine_answers() and os.environ.get("TIAOJIE_TESTS_LOCAL") != "1":
        from testcontainers.kafka import KafkaContainer  # type: ignore[import-not-found]
        from testcontainers.mongodb import MongoDbContainer  # type: ignore[import-not-found]

        with KafkaContainer("apache/kafka:4.1.0").with_kraft() as k, MongoDbContainer("mongo:8") as m:
            yield Servers(k.get_bootstrap_server(), m.get_connection_url(), "testcontainers")
        return
    from tiaojie.infra.stack import Infra

    infra = Infra()
    started = infra.up()
    try:
        kafka_url, mongo_url = infra.urls
        yield Servers(kafka_url, mongo_url, "local" + (f" (started {', '.join(started)})" if started else ""))
    finally:
        if started and os.environ.get("TIAOJIE_KEEP_SERVERS") != "1":
            infra.down()
