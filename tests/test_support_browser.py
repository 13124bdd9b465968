"""The browser fixtures drive a real headless Chromium: forms, navigation, screenshots."""

from __future__ import annotations

import html
from pathlib import Path

from playwright.async_api import Browser, Page

from tests.support.browser import NOT_LOOPBACK, save_screenshot
from tests.support.web import LocalWebServer, WebRequest, WebResponse

pytest_plugins = ["tests.support.plugin"]

FORM = """<!doctype html>
<title>Request access</title>
<form method="post" action="/submit">
  <label>Name <input name="name"></label>
  <label>Reason <select name="reason">
    <option value="audit">Audit</option><option value="support">Support</option>
  </select></label>
  <label><input type="checkbox" name="urgent" value="yes"> Urgent</label>
  <button type="submit">Send request</button>
</form>"""


def _result(request: WebRequest) -> WebResponse:
    form = request.form
    summary = f"{form.get('name')} / {form.get('reason')} / urgent={form.get('urgent', 'no')}"
    return WebResponse(f"<!doctype html><title>Sent</title><p id=result>{html.escape(summary)}</p>")


async def test_fill_and_submit_a_form(page: Page, tmp_path: Path) -> None:
    routes = {"/": lambda _request: WebResponse(FORM), "/submit": _result}
    with LocalWebServer(routes) as web:
        await page.goto(web.url)
        await page.get_by_label("Name").fill("Ada Lovelace")
        await page.get_by_label("Reason").select_option("support")
        await page.get_by_label("Urgent").check()
        async with page.expect_navigation():
            await page.get_by_role("button", name="Send request").click()

        assert await page.title() == "Sent"
        assert await page.locator("#result").inner_text() == "Ada Lovelace / support / urgent=yes"
        posted = await web.wait_for_request_async("/submit")
        assert posted.method == "POST"
        assert posted.form == {"name": "Ada Lovelace", "reason": "support", "urgent": "yes"}

        shot = await save_screenshot(page, tmp_path / "shots" / "sent.png")
        assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


async def test_pages_cannot_reach_beyond_loopback(page: Page) -> None:
    """A page that links to the internet loads, but the outside request never leaves."""
    page_html = (
        "<!doctype html><link rel=stylesheet href='https://fonts.example.invalid/css'>"
        "<img src='http://localhost.example.invalid/pixel.png'><p>ok</p>"
    )
    with LocalWebServer({"/": lambda _request: WebResponse(page_html)}) as web:
        failed: list[str] = []
        page.on("requestfailed", lambda request: failed.append(request.url))
        await page.goto(web.url)
        await page.wait_for_load_state("load")
        assert await page.locator("p").inner_text() == "ok"
    assert sorted(failed) == [
        "http://localhost.example.invalid/pixel.png",
        "https://fonts.example.invalid/css",
    ]


def test_only_loopback_urls_pass_the_guard() -> None:
    """The route pattern that aborts requests: IP literals outside loopback are caught too."""
    for blocked in (
        "http://192.0.2.1/x",
        "https://fonts.googleapis.com/css",
        "http://127.0.0.1.example.invalid/",
        "http://localhost.example.invalid/",
        "ftp://127.0.0.1/",
    ):
        assert NOT_LOOPBACK.match(blocked), blocked
    for allowed in ("http://127.0.0.1:8080/cb?code=1", "http://localhost/", "http://[::1]:9/"):
        assert not NOT_LOOPBACK.match(allowed), allowed


async def test_contexts_do_not_share_cookies(browser: Browser) -> None:
    cookie = WebResponse("<p>set</p>", headers={"Set-Cookie": "seen=1; Path=/; HttpOnly"})
    with LocalWebServer({"/set": lambda _request: cookie}) as web:
        first = await browser.new_context()
        second = await browser.new_context()
        try:
            await (await first.new_page()).goto(f"{web.url}/set")
            assert [c["name"] for c in await first.cookies()] == ["seen"]
            assert await second.cookies() == []
        finally:
            await first.close()
            await second.close()
