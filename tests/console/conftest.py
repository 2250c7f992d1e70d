"""The console in-process (ASGI) against the real database, with a clock the tests move."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from tiaojie.console.app import create_app
from tiaojie.console.service import AccountSpec, ConsoleService
from tiaojie.console.settings import ConsoleSettings
from tiaojie.contracts.common import Role
from tiaojie.runtime.clock import ManualClock
from tiaojie.runtime.settings import RuntimeSettings

PASSWORD = "correct horse battery staple"
IDLE = 30 * 60
MAX = 12 * 3600
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


@dataclass
class Console:
    app: object
    clock: ManualClock
    service: ConsoleService
    settings: ConsoleSettings

    def client(self, address: str = "127.0.0.1") -> httpx.AsyncClient:
        """A browser of its own at this address: its own cookie jar, over HTTPS (Secure
        cookies are sent)."""
        transport = httpx.ASGITransport(app=self.app, client=(address, 50000))  # type: ignore[arg-type]
        return httpx.AsyncClient(transport=transport, base_url="https://console.test", follow_redirects=False)


@pytest.fixture(scope="module")
async def console(settings: RuntimeSettings, divisions_dir: object) -> AsyncIterator[Console]:
    clock = ManualClock()
    console_settings = ConsoleSettings(
        kafka_bootstrap=settings.kafka_bootstrap,
        mongo_url=settings.mongo_url,
        namespace=settings.namespace,
        divisions_dir=settings.divisions_path,
        # Its own database: the mesh's console process of this session uses the default one.
        database_name="tiaojie_console_server_tests",
        demo_accounts=False,
        session_idle_seconds=IDLE,
        session_max_seconds=MAX,
        intake_url="http://127.0.0.1:9",  # nothing listens: these tests never reach a service
        log_json=False,
    )
    app = create_app(console_settings, clock=clock, configure_logs=False)
    service: ConsoleService = app.state.web.service
    async with app.router.lifespan_context(app):
        await service.repo.db.drop_collection("accounts")
        await service.repo.db.drop_collection("sessions")
        await service.repo.db.drop_collection("sign_in_attempts")
        await service.repo.create_indexes()
        yield Console(app=app, clock=clock, service=service, settings=console_settings)


@pytest.fixture
def address(unique: str) -> str:
    """A client address of its own for each test (throttling must not leak between tests)."""
    number = int(unique, 16)
    return f"10.{number >> 16 & 255}.{number >> 8 & 255}.{number & 255}"


@pytest.fixture
async def account(console: Console, unique: str) -> str:
    """A desk account of its own for each test (lock-outs must not leak between tests)."""
    username = f"desk-{unique}"
    await console.service.create_account(
        spec=AccountSpec(username, "测试受理窗口", Role.DESK, ("371302",)), password=PASSWORD
    )
    return username


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


async def sign_in(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD, **extra: str
) -> httpx.Response:
    page = await client.get("/login")
    token = csrf_of(page.text)
    return await client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token, **extra}
    )
