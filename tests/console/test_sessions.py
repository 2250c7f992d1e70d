"""Sign-in, CSRF, sign-out and session expiry of the console, in-process against the real
database, with the clock moved instead of waiting."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.console.conftest import IDLE, MAX, PASSWORD, Console, csrf_of, sign_in
from tiaojie.console.security import token_digest
from tiaojie.console.service import AccountSpec, ConsoleService, PasswordRefused, SignInRefused
from tiaojie.contracts.common import Role

pytestmark = pytest.mark.integration


async def test_sign_in_opens_a_session_in_a_secure_httponly_samesite_cookie(
    console: Console, account: str
) -> None:
    async with console.client() as browser:
        response = await sign_in(browser, account)
        assert response.status_code == 303 and response.headers["location"] == "/desk"
        cookie = next(
            c for c in response.headers.get_list("set-cookie") if c.startswith("__Host-tj_session=")
        )
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "secure", "samesite=lax", "path=/"} <= flags
        assert not any(f.startswith("domain") for f in flags)
        page = await browser.get("/account")
        assert page.status_code == 200 and account in page.text
        token = browser.cookies["__Host-tj_session"]
        # The database keeps only a digest of the cookie value.
        assert await console.service.repo.get_session(token) is None
        assert await console.service.repo.get_session(token_digest(token)) is not None


async def test_wrong_password_and_unknown_user_get_one_answer(console: Console, account: str) -> None:
    async with console.client() as browser:
        wrong = await sign_in(browser, account, "not the password")
        unknown = await sign_in(browser, "nobody-at-all", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert "用户名或密码错误" in wrong.text and "用户名或密码错误" in unknown.text
    assert "__Host-tj_session" not in (wrong.headers.get("set-cookie") or "")


async def test_repeated_failures_lock_the_account_for_a_while_from_that_address(
    console: Console, account: str, address: str
) -> None:
    async with console.client(address) as browser:
        for _ in range(console.settings.max_failed_sign_ins):
            assert (await sign_in(browser, account, "guess")).status_code == 401
        locked = await sign_in(browser, account, PASSWORD)
        assert locked.status_code == 429 and "锁定" in locked.text
        assert int(locked.headers["retry-after"]) == console.settings.lockout_seconds
        console.clock.advance(timedelta(seconds=console.settings.lockout_seconds + 1))
        assert (await sign_in(browser, account, PASSWORD)).status_code == 303


async def test_an_unknown_username_is_locked_like_a_real_one(console: Console, address: str) -> None:
    async with console.client(address) as browser:
        for _ in range(console.settings.max_failed_sign_ins):
            assert (await sign_in(browser, "nobody-here", "guess")).status_code == 401
        locked = await sign_in(browser, "nobody-here", "guess")
    assert locked.status_code == 429 and "锁定" in locked.text


async def test_a_success_clears_the_failures_of_that_address(
    console: Console, account: str, address: str
) -> None:
    async with console.client(address) as browser:
        for _ in range(console.settings.max_failed_sign_ins - 1):
            await sign_in(browser, account, "guess")
        assert (await sign_in(browser, account, PASSWORD)).status_code == 303
    async with console.client(address) as browser:
        for _ in range(console.settings.max_failed_sign_ins - 1):
            assert (await sign_in(browser, account, "guess")).status_code == 401
        assert (await sign_in(browser, account, PASSWORD)).status_code == 303


async def test_an_account_guessed_from_many_addresses_slows_down_those_addresses(
    console: Console, account: str, unique: str
) -> None:
    limit = console.settings.max_failed_sign_ins
    addresses = [f"10.250.{int(unique[:2], 16)}.{i}" for i in range(limit)]
    for address in addresses:  # one guess each: no address is locked
        async with console.client(address) as browser:
            assert (await sign_in(browser, account, "guess")).status_code == 401
    async with console.client(addresses[0]) as browser:
        delayed = await sign_in(browser, account, "guess")
        assert delayed.status_code == 429 and delayed.headers["retry-after"] == "1"
        console.clock.advance(timedelta(seconds=1))
        assert (await sign_in(browser, account, "guess")).status_code == 401
        delayed = await sign_in(browser, account, PASSWORD)  # 6 failures: 2 s now
        assert delayed.status_code == 429 and delayed.headers["retry-after"] == "2"
    async with console.client(f"10.251.{int(unique[:2], 16)}.1") as clean:
        assert (await sign_in(clean, account, PASSWORD)).status_code == 303


async def test_a_disabled_account_cannot_sign_in(console: Console, account: str, address: str) -> None:
    assert await console.service.disable_account(username=account)
    async with console.client(address) as browser:
        refused = await sign_in(browser, account)
    assert refused.status_code == 401 and "用户名或密码错误" in refused.text


async def test_changing_an_account_ends_its_sessions(console: Console, account: str, address: str) -> None:
    async with console.client(address) as first, console.client(address) as second:
        await sign_in(first, account)
        await sign_in(second, account)
        assert await console.service.change_access(
            username=account, role=Role.DESK, counties=["371311"], organisation_id="org-371311-centre"
        )
        for browser in (first, second):
            ended = await browser.get("/account")
            assert ended.status_code == 303 and ended.headers["location"].endswith("&expired=1")
        await sign_in(first, account)
        page = await first.get("/account")
        assert page.status_code == 200 and "罗庄区" in page.text
        assert await console.service.set_password(username=account, password="another long password")
        assert (await first.get("/account")).status_code == 303
        assert (await sign_in(first, account, "another long password")).status_code == 303


async def test_production_refuses_the_demo_password(console: Console, unique: str) -> None:
    production = console.service.settings.model_copy(update={"environment": "production"})
    service = ConsoleService(
        repository=console.service.repo,
        settings=production,
        clock=console.clock,
        metrics=console.service.metrics,
    )
    spec = AccountSpec(f"desk-{unique}", "测试受理窗口", Role.DESK, ("371302",))
    with pytest.raises(PasswordRefused):
        await service.create_account(spec=spec, password=production.demo_password)
    # An account that has it from a development past cannot sign in with it.
    assert await console.service.create_account(spec=spec, password=production.demo_password)
    with pytest.raises(SignInRefused) as refused:
        await service.sign_in(username=spec.username, password=production.demo_password, address="10.9.9.9")
    assert refused.value.reason == "default_password"


async def test_a_form_without_its_csrf_token_is_refused(console: Console, account: str) -> None:
    async with console.client() as browser:
        await browser.get("/login")  # the browser has its anonymous cookie, but sends no token
        response = await browser.post("/login", data={"username": account, "password": PASSWORD})
    assert response.status_code == 403 and "防跨站" in response.text
    assert "__Host-tj_session" not in (response.headers.get("set-cookie") or "")


async def test_the_token_of_another_browser_is_refused(console: Console, account: str) -> None:
    async with console.client() as victim, console.client() as attacker:
        stolen = csrf_of((await attacker.get("/login")).text)
        await victim.get("/login")
        response = await victim.post(
            "/login", data={"username": account, "password": PASSWORD, "csrf_token": stolen}
        )
    assert response.status_code == 403


async def test_a_post_from_another_origin_is_refused(console: Console, account: str) -> None:
    async with console.client() as browser:
        token = csrf_of((await browser.get("/login")).text)
        response = await browser.post(
            "/login",
            data={"username": account, "password": PASSWORD, "csrf_token": token},
            headers={"Origin": "https://evil.example"},
        )
    assert response.status_code == 403


async def test_sign_out_needs_the_token_and_ends_the_session(console: Console, account: str) -> None:
    async with console.client() as browser:
        await sign_in(browser, account)
        old_cookie = browser.cookies["__Host-tj_session"]
        page = await browser.get("/account")
        assert (await browser.post("/logout")).status_code == 403  # no token: still signed in
        assert (await browser.get("/account")).status_code == 200
        out = await browser.post("/logout", data={"csrf_token": csrf_of(page.text)})
        assert out.status_code == 303 and out.headers["location"] == "/login?done=signed_out"
        after = await browser.get("/account")
        assert after.status_code == 303 and after.headers["location"].startswith("/login?next=%2Faccount")
        # The old cookie, replayed, opens nothing: the session is gone from the database.
        browser.cookies.set("__Host-tj_session", old_cookie, domain="console.test")
        replayed = await browser.get("/account")
        assert replayed.status_code == 303 and replayed.headers["location"].endswith("&expired=1")


async def test_an_idle_session_expires(console: Console, account: str) -> None:
    async with console.client() as browser:
        await sign_in(browser, account)
        digest = token_digest(browser.cookies["__Host-tj_session"])
        console.clock.advance(timedelta(seconds=IDLE - 5))
        assert (await browser.get("/account")).status_code == 200
        console.clock.advance(timedelta(seconds=IDLE + 1))
        expired = await browser.get("/account")
        assert expired.status_code == 303
        assert expired.headers["location"] == "/login?next=%2Faccount&expired=1"
        assert await console.service.repo.get_session(digest) is None
        login = await browser.get(expired.headers["location"])
        assert "登录已过期" in login.text


async def test_activity_keeps_a_session_only_until_its_absolute_limit(console: Console, account: str) -> None:
    async with console.client() as browser:
        await sign_in(browser, account)
        step = timedelta(seconds=IDLE - 60)
        elapsed = timedelta(0)
        while elapsed + step < timedelta(seconds=MAX):
            console.clock.advance(step)
            elapsed += step
            assert (await browser.get("/account")).status_code == 200, f"signed out after {elapsed}"
        console.clock.advance(step)
        assert (await browser.get("/account")).status_code == 303


async def test_sweep_removes_expired_sessions(console: Console, account: str) -> None:
    async with console.client() as browser:
        await sign_in(browser, account)
        digest = token_digest(browser.cookies["__Host-tj_session"])
    console.clock.advance(timedelta(seconds=IDLE + 1))
    assert await console.service.sweep_sessions() >= 1
    assert await console.service.repo.get_session(digest) is None


async def test_sign_in_never_redirects_to_another_site(console: Console, account: str) -> None:
    async with console.client() as browser:
        response = await sign_in(browser, account, next="//evil.example/phish")
    assert response.status_code == 303 and response.headers["location"] == "/desk"


async def test_pages_of_other_roles_are_forbidden(console: Console, account: str) -> None:
    async with console.client() as browser:
        await sign_in(browser, account)
        for path in ("/leader", "/registry", "/mediator"):
            response = await browser.get(path)
            assert response.status_code == 403, path
            assert "无权访问" in response.text


async def test_pages_need_a_session(console: Console) -> None:
    async with console.client() as browser:
        response = await browser.get("/desk?status=received")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fdesk%3Fstatus%3Dreceived"


async def test_responses_carry_security_headers(console: Console) -> None:
    async with console.client() as browser:
        response = await browser.get("/apply")
    assert response.status_code == 200
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
