"""The broker as an agency, an intruder or a misbehaving service meets it: kcat (what
agencies use) and aiokafka, with and without credentials, against the session's mesh."""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from devkit.access import credentials_of
from devkit.mesh import Mesh
from tests.support.data import COUNTY, auth
from tiaojie.contracts.common import Role
from tiaojie.runtime.settings import KafkaCredentials, RuntimeSettings


def kcat_config(credentials: KafkaCredentials | None, folder: Path) -> list[str]:
    """kcat's -F file for a principal (the password stays out of the process list)."""
    if credentials is None:
        return []
    lines = [f"security.protocol={credentials.security_protocol.lower()}"]
    if credentials.username:
        lines += [
            f"sasl.mechanisms={credentials.sasl_mechanism}",
            f"sasl.username={credentials.username}",
            f"sasl.password={credentials.password}",
        ]
    if credentials.ca_file:
        lines.append(f"ssl.ca.location={credentials.ca_file}")
    path = folder / f"kcat-{credentials.username or 'anonymous'}.conf"
    path.touch(mode=0o600)
    path.write_text("\n".join(lines) + "\n")
    return ["-F", str(path)]


@dataclass
class Kcat:
    """Runs Debian's kcat as an agency's operator would (as `tiaojie kcat` runs it: on a
    librdkafka that can log in to Kafka 4)."""

    folder: Path
    binary: str
    env: dict[str, str]

    def run(
        self,
        bootstrap: str,
        *args: str,
        credentials: KafkaCredentials | None = None,
        stdin: bytes | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[bytes]:
        argv = [self.binary, "-b", bootstrap, *kcat_config(credentials, self.folder), "-m", "8", *args]
        return subprocess.run(
            argv, input=stdin, capture_output=True, timeout=timeout, check=False, env=self.env
        )

    async def arun(self, *args: Any, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        return await asyncio.to_thread(self.run, *args, **kwargs)


@pytest.fixture(scope="session")
def kcat(tmp_path_factory: pytest.TempPathFactory) -> Kcat:
    from tiaojie.infra.kcat import KcatMissing, kcat_command

    try:
        binary, env = kcat_command()
    except KcatMissing as exc:
        pytest.fail(str(exc))
    return Kcat(tmp_path_factory.mktemp("kcat"), binary, env)


@dataclass(frozen=True)
class Registered:
    """An agency registered over HTTP, with the credential its answer carried."""

    id: str
    answer: dict[str, Any]
    credentials: KafkaCredentials


async def register(
    client: httpx.AsyncClient, mesh: Mesh, settings: RuntimeSettings, agency_id: str, kind: str = "court"
) -> Registered:
    body = {"id": agency_id, "kind": kind, "county": COUNTY, "name": f"测试机构{agency_id}"}
    answer = await client.post(
        f"{mesh.url('referral')}/api/v1/agencies", json=body, headers=auth(settings, Role.ADMIN)
    )
    assert answer.status_code == 201, answer.text
    return Registered(agency_id, answer.json(), credentials_of(answer.json()))
