"""Authorization codes (RFC 6749 §4.1.2): random, stored by hash, single use, at most 60
seconds, and bound to what they were issued for — the client, the redirect URI, the PKCE
challenge, the `dpop_jkt`, the person and what they consented to."""

from __future__ import annotations

import hashlib
import json
import secrets
import time

from ..store.contract import AuthorizationCodeRecord, AuthorizationCodeStore
from .authorization_request import AuthorizationRequest
from .person import Person


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()


async def issue_code(
    store: AuthorizationCodeStore,
    request: AuthorizationRequest,
    person: Person,
    lifetime_seconds: float,
) -> str:
    code = secrets.token_urlsafe(32)
    now = time.time()
    grant = {"person": person.as_json(), "request": request.as_json()}
    await store.save_authorization_code(
        AuthorizationCodeRecord(
            code_hash=code_hash(code),
            client_id=request.client_id,
            grant=json.dumps(grant, separators=(",", ":")),
            issued_at=now,
            expires_at=now + lifetime_seconds,
        )
    )
    return code
