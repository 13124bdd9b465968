"""Headless Chromium driven by Playwright, for tests that use the product as a person would.

Why Debian's Chromium and not Playwright's own browser build: `playwright install` downloads a
browser from outside the package registries, which the project's machines cannot reach. So
the fixture installs Debian's `chromium` package when it is missing and points Playwright's
`launch(executable_path=...)` at it. Playwright speaks the Chrome DevTools Protocol over a
pipe, which stays compatible across Chromium releases near the one a Playwright release was
built against (see `PLAYWRIGHT_RANGE` below for what was checked).

Why the async API: the suite runs on pytest-asyncio's session loop, and Playwright's sync
API does not coexist with it. A sync Playwright keeps its own loop marked as the thread's
running loop between calls (its greenlet dispatcher suspends inside that loop), so once a
session-scoped sync browser exists, every later `async def` test fails with "Runner.run()
cannot be called from a running event loop". The async API runs on the session loop itself,
next to the async fixtures for the bridge, httpx clients and databases; browser tests are
`async def` tests.

Every page is held to loopback: a request for any other host is aborted by the context, and
Chromium resolves no host name but localhost. Tests never reach the internet by accident,
even when a page (oidc-provider's development pages import a web font) links to it.

    async def test_form(page: Page, tmp_path: Path) -> None:
        await page.goto(web.url)
        await save_screenshot(page, tmp_path / "form.png")
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, Route, async_playwright

from tests.support._common import ServiceSetupError, apt_install

WHAT = "headless Chromium for browser tests"
# Checked against Debian 12's chromium 156: Playwright 1.49 and 1.65 pass the browser tests
# (forms, navigation, cookies, screenshots); 1.40, 1.45, 1.52, 1.57 and 1.61 launch it and
# drive a page. Playwright 1.65 was built against Chromium 159: the protocol is compatible.
PLAYWRIGHT_RANGE = ">=1.49,<2"
CHROMIUM_ARGS = [
    "--headless",
    # Tests run as root in containers, where Chromium's sandbox cannot start.
    "--no-sandbox",
    "--disable-gpu",
    # No HTTP/3 probing, no background traffic, no updater, no sign-in sync: a test browser
    # talks to the test's servers and to nothing else.
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Resolve no host name but the loopback ones (connections to IP literals are filtered by
    # the context's route below).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
# Requests to anything but loopback are aborted before they leave the browser.
NOT_LOOPBACK = re.compile(r"^(?!(?:https?|wss?)://(?:127\.0\.0\.1|localhost|\[::1\])(?::\d+)?/)")
DEFAULT_TIMEOUT_MS = 15_000


def find_chromium() -> Path:
    """Debian's Chromium launcher, installing the `chromium` package when it is missing."""
    found = shutil.which("chromium")
    if found is None:
        apt_install(["chromium"], why=WHAT)
        found = shutil.which("chromium")
    if found is None:
        raise ServiceSetupError(f"{WHAT}: `chromium` is installed but not on PATH")
    return Path(found)


def chromium_version(executable: Path) -> str:
    """`chromium --version`, for messages: 'Chromium 156.0.8078.114 built on Debian ...'."""
    result = subprocess.run(
        [str(executable), "--version"], capture_output=True, text=True, check=False, timeout=30
    )
    return result.stdout.strip() or result.stderr.strip()


@contextlib.asynccontextmanager
async def chromium_browser() -> AsyncIterator[Browser]:
    """Launch headless Chromium under Playwright; close it and Playwright after.

    Playwright's `launch` gives the browser a fresh temporary profile and removes it on close.
    """
    executable = await asyncio.to_thread(find_chromium)
    async with async_playwright() as playwright:
        try:
            browser = await playwright.chromium.launch(
                executable_path=executable, headless=True, args=CHROMIUM_ARGS
            )
        except Exception as exc:
            raise ServiceSetupError(
                f"{WHAT}: Playwright could not launch {executable} "
                f"({chromium_version(executable)}); a Playwright release much older or newer "
                f"than the browser may not speak its protocol (checked: {PLAYWRIGHT_RANGE}):\n"
                f"{exc}"
            ) from exc
        try:
            yield browser
        finally:
            await browser.close()


async def _abort(route: Route) -> None:
    await route.abort("blockedbyclient")


async def new_context(browser: Browser) -> BrowserContext:
    """A fresh context (own cookies and storage) held to loopback, with short timeouts."""
    context = await browser.new_context(viewport={"width": 1000, "height": 800})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    await context.route(NOT_LOOPBACK, _abort)
    return context


async def save_screenshot(page: Page, path: Path, *, full_page: bool = True) -> Path:
    """Save a PNG of the page at `path` (creating its folder) and return the path.

    The file tool shows PNGs, so a screenshot is how a person checks what a page looked like.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(path), full_page=full_page)
    return path


@pytest_asyncio.fixture(scope="session", loop_scope="session", name="browser")
async def _browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the whole session; each test gets its own context."""
    async with chromium_browser() as browser:
        yield browser


@pytest_asyncio.fixture(loop_scope="session", name="browser_context")
async def _browser_context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser context per test: no cookies or storage carried between tests."""
    context = await new_context(browser)
    try:
        yield context
    finally:
        await context.close()


@pytest_asyncio.fixture(loop_scope="session", name="page")
async def _page(browser_context: BrowserContext) -> Page:
    """A new page in the test's own context."""
    return await browser_context.new_page()
