"""Rendering a page, with the headers that keep it to itself.

Every page is autoescaped HTML (nothing a client or user sends becomes markup), uncached
(`no-store`: pages carry CSRF tokens and personal data), never framed (`frame-ancestors
'none'` against clickjacking, RFC 9700 §4.16), loads nothing but the bridge's stylesheet,
and sends no `Referer` (a URL the person came from stays with them).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

STYLESHEET_PATH = "/pages/style.css"
_HERE = Path(__file__).parent
# The one script any page runs: submitting the form_post response form (RFC 6749 Form
# Post Response Mode). Allowed by its hash; a browser without scripts shows the button.
AUTO_SUBMIT = "document.forms[0].submit();"
_AUTO_SUBMIT_HASH = base64.b64encode(hashlib.sha256(AUTO_SUBMIT.encode()).digest()).decode()


def content_security_policy(form_targets: Iterable[str] = (), *, script: bool = False) -> str:
    """`form-action` names where the page's forms may go, including where a form's answer
    redirects to (browsers check redirects after a submission too)."""
    targets = " ".join(["'self'", *dict.fromkeys(form_targets)])
    scripts = f"'sha256-{_AUTO_SUBMIT_HASH}'" if script else "'none'"
    return (
        f"default-src 'none'; style-src 'self'; img-src 'self'; script-src {scripts}; "
        f"form-action {targets}; frame-ancestors 'none'; base-uri 'none'"
    )


class Pages:
    def __init__(self) -> None:
        self._env = Environment(
            loader=FileSystemLoader(_HERE / "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._stylesheet = (_HERE / "static" / "style.css").read_bytes()

    def render(
        self,
        template: str,
        *,
        status: int = 200,
        form_targets: Iterable[str] = (),
        script: bool = False,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        html = self._env.get_template(template).render(
            stylesheet=STYLESHEET_PATH, auto_submit=AUTO_SUBMIT, **context
        )
        response = HTMLResponse(html, status_code=status)
        response.headers.update(page_headers(form_targets, script=script))
        response.headers.update(headers or {})
        return response

    def routes(self) -> list[Route]:
        async def stylesheet(request: Request) -> Response:
            return Response(
                self._stylesheet,
                media_type="text/css",
                headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"},
            )

        return [Route(STYLESHEET_PATH, stylesheet, methods=["GET"])]


def page_headers(form_targets: Iterable[str] = (), *, script: bool = False) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(form_targets, script=script),
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
