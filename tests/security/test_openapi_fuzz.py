"""schemathesis against every service's OpenAPI document, as an administrator of every
county would call them: no request the schema allows may cause a server error, every
status code a service answers is documented, every body matches its schema.

The services run as processes in a namespace of their own, so that what the fuzzer
writes (random organisations, mediators, cases) never reaches another test's data."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from devkit.access import deployment as provisioned
from devkit.mesh import Mesh
from devkit.namespace import drop_namespace
from tests.support.data import auth
from tiaojie.contracts.common import Role
from tiaojie.infra.demo import LINYI_COUNTIES
from tiaojie.runtime.settings import RuntimeSettings

pytestmark = [pytest.mark.security, pytest.mark.e2e]

SERVICES = ("intake", "referral", "registry", "stats", "library")
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
# Examples per operation: enough to find what the issue found (15–30 found it), small
# enough for CI. Derandomised, so a run is repeatable and a failure reproduces.
EXAMPLES = 12
FUZZ = hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)


@pytest.fixture(scope="module")
async def fuzzed(settings: RuntimeSettings) -> AsyncIterator[tuple[RuntimeSettings, Mesh]]:
    own = settings.model_copy(update={"namespace": f"fz{uuid.uuid4().hex[:8]}"})
    deployment = await provisioned(own)
    mesh = Mesh(settings=own, deployment=deployment, log_dir=settings.data_dir / "fuzz" / own.namespace)
    try:
        mesh.start_all(list(SERVICES))
        yield own, mesh
    finally:
        mesh.stop_all()
        await drop_namespace(own)


def _fuzz(fuzzed: tuple[RuntimeSettings, Mesh], service: str) -> None:
    """Every operation of the service's schema, EXAMPLES cases each; all failures together."""
    own, mesh = fuzzed
    base = mesh.url(service)
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    headers = auth(own, Role.ADMIN, list(LINYI_COUNTIES))
    failures: list[str] = []
    generated = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @FUZZ
        def call(case: Any) -> None:
            nonlocal generated
            generated += 1
            case.call_and_validate(base_url=base, headers=headers, checks=CHECKS, timeout=10)

        try:
            call()
        except Exception as exc:  # one operation's failure must not hide the others'
            failures.append(f"{operation.method.upper()} {operation.path}: {_describe(exc)}")
    print(f"{service}: {generated} cases generated, {len(failures)} operations failing")
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_answers_as_documented(service: str, fuzzed: tuple[RuntimeSettings, Mesh]) -> None:
    _fuzz(fuzzed, service)


def _describe(exc: BaseException) -> str:
    """The failure and, for Hypothesis' groups of failures, each one of them."""
    parts = [str(exc)[:1500]]
    for sub in getattr(exc, "exceptions", ()):
        parts.append("  - " + _describe(sub).replace("\n", "\n    "))
    return "\n".join(parts)
