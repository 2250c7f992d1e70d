"""The console's sign-in as attackers meet it: a stranger trying to lock `admin` out, an
address spraying guesses, a session outliving its account's rights, and a burst of
sign-ins trying to stall everyone else (in-process against the real database, the clock
moved instead of waiting)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.console.conftest import PASSWORD, Console, account, address, console, csrf_of, sign_in
from tiaojie.console.service import AccountSpec
from tiaojie.contracts.common import Role

pytestmark = pytest.mark.integration
__all__ = ["account", "address", "console"]  # fixtures shared with tests/console

STRANGER = "198.51.100.66"
ADMIN_DESK = "203.0.113.10"


@pytest.fixture
async def admin(console: Console, unique: str) -> str:
    """An administrator account of its own for each test (named like the real one)."""
    username = f"admin-{unique}"
    await console.service.create_account(
        spec=AccountSpec(username, "系统管理员", Role.ADMIN, ("371302", "371311")), password=PASSWORD
    )
    return username


async def test_a_stranger_failing_admins_password_does_not_lock_admin_out(
    console: Console, admin: str
) -> None:
    async with console.client(STRANGER) as stranger:
        answers = [(await sign_in(stranger, admin, f"guess-{n}")).status_code for n in range(20)]
    assert 303 not in answers
    async with console.client(ADMIN_DESK) as own:
        signed_in = await sign_in(own, admin, PASSWORD)
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/registry"
        assert (await own.get("/account")).status_code == 200


async def test_an_address_spraying_guesses_is_throttled(console: Console, unique: str) -> None:
    answers: list[httpx.Response] = []
    async with console.client("198.51.100.77") as attacker:
        for n in range(30):  # a different account each time: no account is locked
            answers.append(await sign_in(attacker, f"user{n}-{unique}", "123456"))
            if answers[-1].status_code != 401:
                break
    throttled = answers[-1]
    assert throttled.status_code == 429 and len(answers) == 21  # 20 failures, then no more
    assert int(throttled.headers["retry-after"]) == 15 * 60  # when the first failure ages out
    assert "登录失败次数过多" in throttled.text
    async with console.client("198.51.100.78") as neighbour:  # another address is not
        assert (await sign_in(neighbour, f"user-last-{unique}", "123456")).status_code == 401


async def test_a_disabled_accounts_open_session_stops_at_its_next_request(
    console: Console, account: str, address: str
) -> None:
    async with console.client(address) as browser:
        await sign_in(browser, account)
        assert (await browser.get("/account")).status_code == 200
        # However the account is disabled (here straight in its record), the session ends.
        await console.service.repo.update_account(account, {"active": False})
        after = await browser.get("/account")
    assert after.status_code == 303 and after.headers["location"].startswith("/login")


async def test_a_role_change_ends_the_session(console: Console, account: str, address: str) -> None:
    async with console.client(address) as browser:
        await sign_in(browser, account)
        assert (await browser.get("/account")).status_code == 200
        await console.service.repo.update_account(account, {"role": Role.MEDIATOR})
        after = await browser.get("/account")
    assert after.status_code == 303 and after.headers["location"].startswith("/login")


async def test_a_burst_of_sign_ins_does_not_stall_other_pages(console: Console, unique: str) -> None:
    """Ordering, not time: with argon2 on the event loop, nothing else runs while the
    burst's passwords are checked, so the other browser's twenty page loads end after the
    burst; with argon2 in worker threads they end while the burst is still being checked."""
    burst, pages = 12, 20
    browsers = [console.client(f"192.0.2.{n + 1}") for n in range(burst)]
    tokens = [csrf_of((await b.get("/login")).text) for b in browsers]
    finished: list[str] = []

    async def attempt(browser: httpx.AsyncClient, token: str, n: int) -> None:
        form = {"username": f"burst{n}-{unique}", "password": "wrong", "csrf_token": token}
        assert (await browser.post("/login", data=form)).status_code == 401
        finished.append("sign-in")

    async def other() -> None:
        async with console.client("192.0.2.200") as reader:
            for _ in range(pages):
                assert (await reader.get("/healthz")).status_code == 200
        finished.append("other")

    try:
        pairs = enumerate(zip(browsers, tokens, strict=True))
        tasks = [asyncio.create_task(attempt(b, t, n)) for n, (b, t) in pairs]
        await asyncio.sleep(0)  # the burst is under way first
        await asyncio.gather(*tasks, other())
    finally:
        for browser in browsers:
            await browser.aclose()
    assert finished.index("other") < burst, finished
