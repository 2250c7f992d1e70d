"""Playwright (Python) driving Debian's chromium against the real mesh.

Chromium is /usr/bin/chromium from Debian (the setup installs it); Playwright never
downloads a browser here. Screenshots of every page go to test-artifacts/screenshots.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from devkit.mesh import Mesh
from tests.browser.registry import load_registry_subset
from tiaojie.runtime.settings import RuntimeSettings

CHROMIUM = os.environ.get("TIAOJIE_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PHONE = {"width": 360, "height": 780}
OFFICE = {"width": 1366, "height": 900}
DEMO_PASSWORD = "Tiaojie-2026"  # the console's development accounts (ConsoleSettings.demo_password)


@pytest.fixture(scope="module")
def playwright(console_url: str) -> Iterator[Playwright]:
    # Playwright's sync API runs an event loop in this thread: everything that uses
    # asyncio.run (servers, mesh, registry loading) is set up before it starts.
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: ./dev installs Debian's chromium package"
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def console_url(mesh: Mesh, settings: RuntimeSettings) -> str:
    """The console of the session's mesh, with the Linyi registry of 兰山区 and 罗庄区 loaded."""
    asyncio.run(load_registry_subset(mesh.url("registry"), settings))
    return mesh.url("console")


@dataclass
class Shots:
    """Screenshots for review, named by page and viewport width."""

    taken: list[Path] = field(default_factory=list)

    def __call__(self, page: Page, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        width = page.viewport_size["width"] if page.viewport_size else 0
        path = SCREENSHOTS / f"{name}-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)


@pytest.fixture(scope="module")
def shots() -> Shots:
    return Shots()


def open_page(browser: Browser, size: dict[str, int]) -> Page:
    context = browser.new_context(viewport=size, locale="zh-CN", timezone_id="Asia/Shanghai")  # type: ignore[arg-type]
    context.set_default_timeout(20_000)
    return context.new_page()


def sign_in(browser: Browser, base: str, username: str, size: dict[str, int] = OFFICE) -> Page:
    page = open_page(browser, size)
    page.goto(f"{base}/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(DEMO_PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="登录").click()
    assert "/login" not in page.url, f"{username} could not sign in"
    return page


def unlabelled_fields(page: Page) -> list[str]:
    """Visible form fields without a label (for keyboard and screen-reader users)."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('input, select, textarea'))
            .filter(el => el.type !== 'hidden' && el.offsetParent !== null)
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
            .map(el => el.name || el.id)"""
    )
