"""Sending the user back to the client (RFC 6749 §4.1.2): the code or the error, with
`state` and the RFC 9207 `iss` (so a client talking to several authorization servers knows
which one answered: mix-up defence), by `query` or by `form_post`."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from starlette.responses import RedirectResponse, Response

from ..errors import OAuthError, description_text
from ..web.pages import Pages


def origin_of(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def send_back(
    pages: Pages,
    redirect_uri: str,
    response_mode: str,
    parameters: dict[str, str | None],
) -> Response:
    pairs = [(k, v) for k, v in parameters.items() if v is not None]
    if response_mode == "form_post":
        return pages.render(
            "form_post.html",
            redirect_uri=redirect_uri,
            parameters=pairs,
            form_targets=[origin_of(redirect_uri)],
            script=True,
        )
    parts = urlsplit(redirect_uri)
    # §3.1.2: a registered query component is kept; ours are added to it.
    query = parts.query + ("&" if parts.query else "") + urlencode(pairs)
    target = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    # 303: the browser follows with GET, even after the consent form's POST.
    return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})


def send_error_back(
    pages: Pages,
    issuer: str,
    redirect_uri: str,
    response_mode: str,
    state: str | None,
    error: OAuthError,
) -> Response:
    return send_back(
        pages,
        redirect_uri,
        response_mode,
        {
            "error": error.error,
            "error_description": description_text(error.description) if error.description else None,
            "state": state,
            "iss": issuer,
        },
    )
