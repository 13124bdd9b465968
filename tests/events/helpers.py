"""Helpers of the events tests: transmitters the tests play (each with its own key), the
`[events]` configuration that names them, SETs they sign, and pushes to the bridge.

- `signals`: the organisation's identity provider, sending CAEP events about people (and
  opening access requests for them);
- `pager`: an on-call pager that the tests' policies let approve requests needing a manager;
- `tickets`: a ticketing system allowed to send decisions, which no policy lets decide.

The policies the tests add to the demo store (`EVENT_POLICIES`): the pager approves what a
manager approves, and a person whose `suspended` property is true exports nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jws
from joserfc.jwk import ECKey

from bridge.events.event_types import (
    ACCESS_REQUEST_DECISION,
    ACCESS_REQUEST_OPEN,
    ASSURANCE_LEVEL_CHANGE,
    CREDENTIAL_CHANGE,
    SESSION_REVOKED,
    TOKEN_CLAIMS_CHANGE,
)

PUSH = "/ssf/events"
SET_MEDIA_TYPE = "application/secevent+jwt"
# The audience the tests' transmitters use for the bridge (configured, so it does not
# depend on the test server's port).
BRIDGE_AUDIENCE = "https://bridge.test/ssf/events"


@dataclass(frozen=True)
class SignalSource:
    name: str
    issuer: str
    key: ECKey
    events: tuple[str, ...]

    def config(self, audience: str = BRIDGE_AUDIENCE) -> str:
        jwks = {"keys": [self.key.as_dict(private=False)]}
        return "\n".join(
            [
                "[[events.transmitters]]",
                f"name = {json.dumps(self.name)}",
                f"issuer = {json.dumps(self.issuer)}",
                f"jwks = {toml_inline(jwks)}",
                f"audience = {json.dumps(audience)}",
                f"events = {json.dumps(list(self.events))}",
                "",
            ]
        )

    def set(
        self,
        event_type: str,
        event: dict[str, Any],
        sub_id: dict[str, Any] | None,
        *,
        key: ECKey | None = None,
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A SET of this transmitter (`claims` override or add to the usual ones)."""
        body: dict[str, Any] = {
            "iss": self.issuer,
            "jti": uuid.uuid4().hex,
            "iat": int(time.time()),
            "aud": BRIDGE_AUDIENCE,
            "events": {event_type: event},
        }
        if sub_id is not None:
            body["sub_id"] = sub_id
        body.update(claims)
        signing = key or self.key
        protected = {"alg": "ES256", "kid": signing.kid, "typ": "secevent+jwt", **(header or {})}
        payload = json.dumps({k: v for k, v in body.items() if v is not None}).encode()
        return jws.serialize_compact(protected, payload, signing, algorithms=["ES256"])


def _key(kid: str) -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid}, private=True)


SIGNALS = SignalSource(
    "signals",
    "https://signals.test",
    _key("signals-1"),
    (
        SESSION_REVOKED,
        CREDENTIAL_CHANGE,
        TOKEN_CLAIMS_CHANGE,
        ASSURANCE_LEVEL_CHANGE,
        ACCESS_REQUEST_OPEN,
    ),
)
PAGER = SignalSource("pager", "https://pager.test", _key("pager-1"), (ACCESS_REQUEST_DECISION,))
TICKETS = SignalSource(
    "tickets", "https://tickets.test", _key("tickets-1"), (ACCESS_REQUEST_DECISION,)
)
# Someone else's key, claiming to be the identity provider's.
FORGER_KEY = _key("signals-1")

EVENT_POLICIES = """
// The on-call pager (a transmitter of events) approves what a manager approves.
@id("pager-approves-manager-requests")
permit (
  principal == transmitter::"pager",
  action == Action::"approve",
  resource is AccessRequest
)
when { resource.template == "manager" };

// A person whose `suspended` property is true exports nothing (an event may say so).
@id("suspended-people-export-nothing")
forbid (principal, action == Action::"export", resource is CustomerRecord)
when { principal has suspended && principal.suspended };
"""


def events_config(*transmitters: SignalSource, extra: str = "") -> str:
    return "\n[events]\n" + extra + "\n" + "\n".join(t.config() for t in transmitters)


def toml_inline(value: Any) -> str:
    """A JSON value as a TOML inline value."""
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{json.dumps(k)} = {toml_inline(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(toml_inline(v) for v in value) + "]"
    return json.dumps(value)


def push(http: httpx.Client, token: str, *, path: str = PUSH) -> httpx.Response:
    return http.post(path, content=token, headers={"Content-Type": SET_MEDIA_TYPE})


def assert_refused(response: httpx.Response, err: str) -> dict[str, Any]:
    """RFC 8935 §2.3: 400 with `{"err", "description"}`."""
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["err"] == err, body
    assert isinstance(body["description"], str) and body["description"]
    return body


def person_id(who: str) -> dict[str, str]:
    """A person as the identity provider names them in `sub_id`."""
    return {"format": "email", "email": who}


def wait_until(what: str, condition: Any, seconds: float = 30.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = condition()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
