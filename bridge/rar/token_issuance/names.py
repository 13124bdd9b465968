"""Gate action names: `issue:<token-type>:<grant-type>` (token issuance profile §5.3.1,
§5.3.2 and the registries of §13.3; the token exchange binding §9 adds token types).

Short names match `[a-z][a-z0-9_]{0,20}` so that a relationship-based PDP can turn the
composed name into a relation by replacing each `:`; a grant or token type URI carried
verbatim would not survive that, which is why the profile registers short names at all.
"""

from __future__ import annotations

import re
from typing import Final

GATE_PREFIX: Final = "issue:"

# The reserved action of a cell whose entry names no `actions` (§5.3.4, §13.3).
NO_ACTION: Final = "authorization_detail"

# Token types (§13.3; `id_jag`, `jwt`, `txn_token`, `saml1`, `saml2`: binding §9).
TOKEN_TYPES: Final[dict[str, str]] = {
    "urn:ietf:params:oauth:token-type:access_token": "access_token",
    "urn:ietf:params:oauth:token-type:refresh_token": "refresh_token",
    "urn:ietf:params:oauth:token-type:id_token": "id_token",
    "urn:ietf:params:oauth:token-type:id-jag": "id_jag",
    "urn:ietf:params:oauth:token-type:txn_token": "txn_token",
    "urn:ietf:params:oauth:token-type:jwt": "jwt",
    "urn:ietf:params:oauth:token-type:saml1": "saml1",
    "urn:ietf:params:oauth:token-type:saml2": "saml2",
}

# Grant types (§13.3). CIBA's grant has no registered name; `ciba` is the bridge's own,
# in the registry's grammar. DTR's deferred grant never has a gate of its own: a deferred
# request is decided again on the evaluations of the grant it started with.
GRANT_TYPES: Final[dict[str, str]] = {
    "authorization_code": "authorization_code",
    "client_credentials": "client_credentials",
    "refresh_token": "refresh_token",
    "urn:ietf:params:oauth:grant-type:token-exchange": "token_exchange",
    "urn:ietf:params:oauth:grant-type:device_code": "device_code",
    "urn:ietf:params:oauth:grant-type:jwt-bearer": "jwt_bearer",
    "urn:ietf:params:oauth:grant-type:saml2-bearer": "saml2_bearer",
    "urn:openid:params:grant-type:ciba": "ciba",
}

_SHORT_NAME = re.compile(r"[a-z][a-z0-9_]{0,20}")


def token_type_short_name(token_type: str) -> str:
    """The registered short name of a token type URI (KeyError for one without)."""
    return TOKEN_TYPES[token_type]


def grant_short_name(grant_type: str) -> str:
    """The registered short name of a grant type (KeyError for one without)."""
    return GRANT_TYPES[grant_type]


def gate_action(token_type: str, grant_type: str) -> str:
    """`issue:access_token:client_credentials` from short names; the last segment always
    names the grant, never a second token type."""
    for name in (token_type, grant_type):
        if not _SHORT_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a short name of the token issuance registries")
    return f"{GATE_PREFIX}{token_type}:{grant_type}"


def gate_token_type(action: str) -> str:
    """The token type a gate action names: `access_token` of
    `issue:access_token:client_credentials`."""
    return action[len(GATE_PREFIX) :].split(":", 1)[0]
