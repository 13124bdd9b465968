"""Pushed authorization requests (RFC 9126) and interactions in progress, in the store.

A pushed request's `request_uri` is `urn:ietf:params:oauth:request_uri:<reference>`, with
a random reference kept only as its hash; it is used once, by its own client, within its
lifetime (§4, §7.3). An interaction is the checked request waiting for a person to sign in
and consent; it is bound to the browser that started it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time

from ..store.contract import AuthorizationRequestRecord, AuthorizationRequestStore
from .authorization_request import AuthorizationRequest
from .errors import InvalidRequestURI

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"


def id_hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


async def push(
    store: AuthorizationRequestStore, request: AuthorizationRequest, lifetime: float
) -> str:
    reference = secrets.token_urlsafe(32)
    now = time.time()
    await store.save_authorization_request(
        AuthorizationRequestRecord(
            id_hash=id_hash(reference),
            kind="pushed",
            client_id=request.client_id,
            parameters=json.dumps(request.as_json(), separators=(",", ":")),
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    return REQUEST_URI_PREFIX + reference


async def take_pushed(
    store: AuthorizationRequestStore, request_uri: str, client_id: str
) -> AuthorizationRequest:
    """The pushed request, used up; `InvalidRequestURI` when it is not (or no longer) one."""
    if not request_uri.startswith(REQUEST_URI_PREFIX):
        raise InvalidRequestURI("request_uri is not one this server issued")
    record = await store.use_authorization_request(
        id_hash(request_uri.removeprefix(REQUEST_URI_PREFIX)), time.time()
    )
    if record is None or record.kind != "pushed" or record.client_id != client_id:
        raise InvalidRequestURI("request_uri is unknown, used or expired")
    return AuthorizationRequest.from_json(json.loads(record.parameters))


async def begin_interaction(
    store: AuthorizationRequestStore,
    request: AuthorizationRequest,
    browser_hash: str,
    lifetime: float,
) -> str:
    uid = secrets.token_urlsafe(16)
    now = time.time()
    await store.save_authorization_request(
        AuthorizationRequestRecord(
            id_hash=id_hash(uid),
            kind="interaction",
            client_id=request.client_id,
            parameters=json.dumps(request.as_json(), separators=(",", ":")),
            created_at=now,
            expires_at=now + lifetime,
            browser_hash=browser_hash,
        )
    )
    return uid


async def find_interaction(
    store: AuthorizationRequestStore, uid: str, browser_hash: str
) -> AuthorizationRequest | None:
    record = await store.find_authorization_request(id_hash(uid), time.time())
    if record is None or record.kind != "interaction" or record.browser_hash != browser_hash:
        return None
    return AuthorizationRequest.from_json(json.loads(record.parameters))


async def end_interaction(
    store: AuthorizationRequestStore, uid: str, browser_hash: str
) -> AuthorizationRequest | None:
    """Used once: a consent decision is taken once, even if the form is sent twice."""
    record = await store.use_authorization_request(id_hash(uid), time.time())
    if record is None or record.kind != "interaction" or record.browser_hash != browser_hash:
        return None
    return AuthorizationRequest.from_json(json.loads(record.parameters))
