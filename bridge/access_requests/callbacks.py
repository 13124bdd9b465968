"""ARAP callbacks (ARAP §12): where they may go, and their delivery from the outbox.

A submission may register `callback: {endpoint, state?, events?}` (the ARAP Callback
profile). `events` names terminal statuses (`approved`, `denied`, `expired`, `cancelled`,
`failed`, `partial`; another name is refused). When the task reaches one named there (any
terminal status when `events` is absent), the state change queues an outbox row of kind
`arap_callback`; this handler POSTs `{"state"?, "task", "result"?}` to the endpoint: the
task as its status endpoint answers then (a bundle's items with their own status and
result), so the callback is enforceable as it stands, and the status endpoint stays
authoritative.

Authentication: `Authorization: Bearer <JWT>`, a JWT signed with the bridge's signing key
(the same JWKS as access and binding tokens, `jwks_uri`), header `typ: arap-callback+jwt`,
claims `iss` (the bridge), `aud` (the callback endpoint URL, exactly as registered), `iat`,
`exp` (5 minutes), `jti`, `task_id`, and `body_sha256` (base64url SHA-256 of the exact body
bytes), so the receiver can check who sent it, that it was meant for it, and that the body is
the one signed. No shared secret has to be handed out.

Targets: `https` only, and never loopback, private, link-local or otherwise non-public
addresses, unless `access_requests.allow_private_callbacks` is on (local testing; then `http`
is allowed too, and delivered to loopback addresses only). `allowed_target` checks the URL
when it is registered; each attempt goes through `bridge.outbound`, which resolves the host,
checks every address, connects to a checked one and follows no redirects. 2xx is delivered;
a network error, 408, 429 and 5xx are retried with the outbox's backoff; any other answer
(or a refused target) gives up.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import secrets
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

from joserfc import jws

from ..grammar import is_uri
from ..jose.signing_keys import SigningKeys
from ..outbound import OutboundPoster, Resolver, system_resolver
from ..outbox import GiveUp, Outcome, post_outcome
from ..store.contract import OutboxRow, TaskRecord
from .problems import BadRequest
from .tasks import CALLBACK_EVENTS, TaskURLs, TaskView

KIND = "arap_callback"
# The Callback profile's event names: the terminal statuses (`partial` for bundles).
EVENTS = CALLBACK_EVENTS
TYP = "arap-callback+jwt"
TOKEN_SECONDS = 300
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")


def check_callback(raw: object, *, allow_private: bool) -> dict[str, Any]:
    """The `callback` member of a submission, checked; `BadRequest` saying what is wrong."""
    if not isinstance(raw, dict):
        raise BadRequest("callback must be an object")
    endpoint = raw.get("endpoint")
    if not isinstance(endpoint, str) or not allowed_target(endpoint, allow_private):
        raise BadRequest("callback.endpoint must be a public https URL")
    out: dict[str, Any] = {"endpoint": endpoint}
    if raw.get("state") is not None:
        out["state"] = raw["state"]
    events = raw.get("events")
    if events is not None:
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            raise BadRequest("callback.events must be an array of strings")
        unknown = sorted(set(events) - EVENTS)
        if unknown:
            # An event no task ever reaches would silently never be sent: say so now.
            raise BadRequest(
                f"callback.events: {', '.join(unknown)} is no event; the events are "
                + ", ".join(sorted(EVENTS))
            )
        out["events"] = events
    return out


def allowed_target(url: str, allow_private: bool) -> bool:
    if not is_uri(url):
        return False
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a malformed port
    except ValueError:
        return False
    host = (parts.hostname or "").lower().rstrip(".")
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes or not host or "@" in parts.netloc or parts.fragment:
        return False
    if allow_private:
        return True
    if host == "localhost" or host.endswith(_LOCAL_SUFFIXES):
        return False
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        return True  # a name: its addresses are checked before each delivery


def wants(callback: dict[str, Any] | None, status: str) -> bool:
    """Whether the registered callback asked to hear about this terminal status."""
    if callback is None:
        return False
    events = callback.get("events")
    return events is None or status in events


def callback_payload(task_id: str, status: str) -> bytes:
    return json.dumps({"task_id": task_id, "status": status}).encode("utf-8")


class TaskReader(Protocol):
    async def task_get(self, task_id: str) -> TaskRecord | None: ...


class CallbackSender:
    """The outbox handler for `arap_callback` rows."""

    def __init__(
        self,
        tasks: TaskReader,
        keys: SigningKeys,
        issuer: str,
        urls: TaskURLs,
        *,
        allow_private: bool,
        clock: Callable[[], float] = time.time,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._tasks = tasks
        self._keys = keys
        self._issuer = issuer
        self._urls = urls
        self._allow_private = allow_private
        self._clock = clock
        self._poster = OutboundPoster(allow_private=allow_private, resolver=resolver)

    async def __call__(self, row: OutboxRow) -> Outcome:
        try:
            task_id = json.loads(row.payload)["task_id"]
        except (ValueError, KeyError, TypeError):
            return GiveUp("unreadable payload")
        task = await self._tasks.task_get(task_id)
        if task is None or task.callback is None:
            return GiveUp("the task or its callback is gone")
        endpoint = task.callback["endpoint"]
        if not allowed_target(endpoint, self._allow_private):
            return GiveUp("callback target not allowed")
        body = {**TaskView(task).to_json(self._urls)}
        if "state" in task.callback:
            body = {"state": task.callback["state"], **body}
        data = json.dumps(body, separators=(",", ":")).encode("utf-8")
        token = await self._token(endpoint, task.id, data)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        return await post_outcome(self._poster, endpoint, headers, data, "callback")

    async def _token(self, endpoint: str, task_id: str, body: bytes) -> str:
        signing = await self._keys.active()
        now = int(self._clock())
        digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()
        claims = {
            "iss": self._issuer,
            "aud": endpoint,
            "iat": now,
            "exp": now + TOKEN_SECONDS,
            "jti": secrets.token_urlsafe(16),
            "task_id": task_id,
            "body_sha256": digest,
        }
        header = {"typ": TYP, "alg": signing.alg, "kid": signing.kid}
        payload = json.dumps(claims, separators=(",", ":")).encode("utf-8")
        return jws.serialize_compact(header, payload, signing.key, algorithms=[signing.alg])
