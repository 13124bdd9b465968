"""Reading a backchannel authentication request (OpenID CIBA Core 1.0 §7.1, §7.2), after the
client has authenticated: what it asks for, for whom, with what message, for how long.

- `scope` is REQUIRED and includes `openid` (§7.1); else `invalid_scope`. The bridge is not
  an identity provider and issues no ID token: `openid` is accepted and then set aside, so the
  PDP never decides it and no token carries it. What is left of `scope`, with
  `authorization_details` and `resource`, is the access asked for (AROP §9.2), read as the
  token endpoint reads it;
- exactly one hint (§7.1: `login_hint_token`, `id_token_hint`, `login_hint`); the bridge
  takes `login_hint` only, the user's name (`users.KnownUsers`);
- `binding_message` (optional): at most `MAX_BINDING_MESSAGE` printable characters, no line
  breaks or other controls; else `invalid_binding_message`;
- `requested_expiry` (optional): a positive integer of seconds (§7.1), granted up to
  `ciba.max_expiry_seconds`;
- `client_notification_token`: REQUIRED for a client registered for `ping` (§7.1), a bearer
  token value (RFC 6750 §2.1); not kept for a `poll` client, which is never pinged;
- `user_code` and `acr_values` are not used (the metadata says so for `user_code`); a
  signed request (`request`, §7.1.1) is refused.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import rfc8785

from ..deferral import check_notification_token
from ..deferral.extension import request_identity
from ..deferral.models import CONSENT_MEMBER
from ..errors import InvalidRequest, InvalidScope
from ..oauth.clients import Client
from ..oauth.form import Form
from .errors import InvalidBindingMessage

OPENID = "openid"
MAX_BINDING_MESSAGE = 100
HINTS = ("login_hint", "login_hint_token", "id_token_hint")
# The parameters the endpoint reads (beside client authentication's).
PARAMETERS = frozenset(
    {
        "scope",
        "authorization_details",
        "resource",
        "binding_message",
        "requested_expiry",
        "client_notification_token",
        "request",
        *HINTS,
    }
)


@dataclass(frozen=True)
class BackchannelRequest:
    login_hint: str
    access: Form  # authorization_details, scope without `openid`, resource
    binding_message: str | None
    requested_expiry: int | None
    notification_token: str | None  # only for a client in ping mode
    ping: bool


def read_backchannel_request(form: Form, client: Client) -> BackchannelRequest:
    if "request" in form:
        raise InvalidRequest("signed authentication requests (request) are not supported")
    scope = (form.get("scope") or "").split(" ")
    if OPENID not in scope:
        raise InvalidScope("scope must include openid (CIBA Core 7.1)")
    access = [(n, v) for n, v in form.pairs() if n in ("authorization_details", "resource")]
    rest = " ".join(s for s in scope if s and s != OPENID)
    if rest:
        access.append(("scope", rest))
    ping = client.backchannel_token_delivery_mode == "ping"
    token = form.get("client_notification_token")
    if ping:
        if token is None:
            raise InvalidRequest("client_notification_token is required in ping mode")
        check_notification_token(token)
    return BackchannelRequest(
        login_hint=_login_hint(form),
        access=Form(access),
        binding_message=_binding_message(form.get("binding_message")),
        requested_expiry=_requested_expiry(form.get("requested_expiry")),
        notification_token=token if ping else None,
        ping=ping,
    )


def _login_hint(form: Form) -> str:
    sent = [name for name in HINTS if name in form]
    if len(sent) != 1:
        raise InvalidRequest("send exactly one of login_hint, login_hint_token, id_token_hint")
    if sent[0] != "login_hint":
        raise InvalidRequest(f"{sent[0]} is not supported: name the user in login_hint")
    return form.require("login_hint")


def _binding_message(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_BINDING_MESSAGE:
        raise InvalidBindingMessage(
            f"binding_message has more than {MAX_BINDING_MESSAGE} characters"
        )
    if any(unicodedata.category(c).startswith("C") for c in value) or not value.strip():
        raise InvalidBindingMessage("binding_message must be one line of printable text")
    return value


def _requested_expiry(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 9 or int(value) < 1:
        raise InvalidRequest("requested_expiry must be a positive integer of seconds")
    return int(value)


def ciba_identity(
    client_id: str, jkt: str | None, request: Mapping[str, Any], binding_message: str | None
) -> bytes | None:
    """What makes two backchannel requests the same one (AROP §7.2: a repeated request gets
    the same `auth_req_id`): what makes two deferred requests the same
    (`deferral.extension.request_identity`: client, DPoP key, grant type, principal, what is
    asked), and the binding message she is shown. None: never deduplicated."""
    identity = request_identity(client_id, jkt, request)
    if identity is None:
        return None
    return rfc8785.dumps({"request": identity.decode("utf-8"), "binding_message": binding_message})


def binding_message_of(snapshot: Mapping[str, Any]) -> str | None:
    """The binding message a stored CIBA deferral was made with (`user_request`)."""
    consent = snapshot.get(CONSENT_MEMBER)
    message = consent.get("binding_message") if isinstance(consent, dict) else None
    return message if isinstance(message, str) else None
