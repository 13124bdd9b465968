"""The second leg: the code, sent with the PKCE verifier and the client's credentials to the
provider's token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.5), comes back as an ID token.

Only the ID token is kept: the bridge asks the provider who the person is, nothing else, so
the access and refresh tokens the provider may add are dropped unread.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from ..settings import TokenEndpointAuthMethod
from .authorization import PendingSignIn
from .errors import CodeExchangeFailed
from .provider_http import MAX_DETAIL, ProviderHTTP, ProviderHTTPError

# RFC 6749 §5.2: an error code (and its description) is printable ASCII without `"` and `\`.
OAUTH_ERROR_TEXT: Final = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,200}")


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    client_id: str
    secret: str | None  # None for a public client
    method: TokenEndpointAuthMethod

    def __repr__(self) -> str:  # never the secret, even in a traceback's locals
        return f"ClientCredentials({self.client_id!r}, {self.method})"


async def exchange_code(
    fetcher: ProviderHTTP,
    token_endpoint: str,
    credentials: ClientCredentials,
    code: str,
    pending: PendingSignIn,
) -> str:
    """The ID token the provider issues for `code`; `CodeExchangeFailed` otherwise."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": pending.redirect_uri,
        "code_verifier": pending.code_verifier,
    }
    headers: dict[str, str] = {}
    if credentials.method == "client_secret_basic":
        assert credentials.secret is not None
        # RFC 6749 §2.3.1: each part form-urlencoded before they are joined and encoded.
        pair = f"{quote(credentials.client_id, safe='')}:{quote(credentials.secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode("utf-8")).decode()
    else:
        form["client_id"] = credentials.client_id
        if credentials.method == "client_secret_post":
            assert credentials.secret is not None
            form["client_secret"] = credentials.secret
    try:
        answer = await fetcher.post_form(token_endpoint, form, headers)
    except ProviderHTTPError as exc:
        raise CodeExchangeFailed(f"the code could not be exchanged: {exc}") from None
    body = answer.body
    if answer.status != 200:
        raise CodeExchangeFailed(
            f"the provider's token endpoint refused the code: HTTP {answer.status}"
            + _oauth_error(body)
        )
    if not isinstance(body, dict):
        raise CodeExchangeFailed("the provider's token response is not a JSON object")
    id_token = body.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise CodeExchangeFailed(
            "the provider's token response has no id_token (is `openid` among its scopes?)"
        )
    return id_token


def _oauth_error(body: object) -> str:
    """` (error: description)` from an RFC 6749 §5.2 error body, when it is well-formed."""
    if not isinstance(body, dict):
        return ""
    error, description = body.get("error"), body.get("error_description")
    if not isinstance(error, str) or not OAUTH_ERROR_TEXT.fullmatch(error):
        return ""
    if isinstance(description, str) and OAUTH_ERROR_TEXT.fullmatch(description):
        return f" ({error}: {description[:MAX_DETAIL]})"
    return f" ({error})"
