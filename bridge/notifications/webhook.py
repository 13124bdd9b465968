"""Approver notices POSTed to webhooks, signed with the bridge's signing keys.

Two formats (`notifications.webhooks.<name>.format`):

- `jws`: the body is a compact JWS (`Content-Type: application/jose`), header `typ`
  `approval-notice+jwt`, `alg` and `kid` of the bridge's active signing key; claims `iss`
  (the bridge's issuer), `aud` (the webhook's URL, exactly as configured), `iat`, `exp`
  (5 minutes on), `jti` (the message's id: the same on every attempt, so a receiver drops a
  repeat) and `notice` (`messages.notice_claim`: task, reason, template, step, page URL and
  the request in words);
- `slack`: the body is a Slack incoming-webhook message, `{"text": ...}` (JSON), and the
  same JWS, with one more claim, `body_sha256` (base64url SHA-256 of the exact body bytes),
  travels in the `Bridge-Signature` header: a receiver that checks it knows the bridge sent
  this very body; Slack itself ignores it.

A user's consent notice (`consent.ConsentMessage`, a CIBA request waiting for her) goes the
same way, with `typ` `consent-notice+jwt` and its facts in the claim `consent_notice`.

Receivers verify the JWS with the bridge's published keys (`<issuer>/jwks`), as they verify
its access tokens and ARAP callbacks. Every POST goes through `bridge.outbound` (https to
public addresses, unless `allow_private_network`; the host resolved and checked before
each attempt; no redirects). 2xx → delivered; a network error, 408, 429 or 5xx → retried;
any other answer, or a refused target → given up. The URL is never logged (a Slack URL is
a credential): the webhook's name is.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any, Protocol

from joserfc import jws

from ..jose.signing_keys import SigningKeys
from ..outbound import Posters, Resolver, system_resolver
from ..outbox import Outcome, post_outcome
from ..settings import WebhookSettings

JOSE_MEDIA_TYPE = "application/jose"
SIGNATURE_HEADER = "Bridge-Signature"
TOKEN_SECONDS = 300


class WebhookMessage(Protocol):
    """One message a webhook carries (`ApproverMessage`, `ConsentMessage`)."""

    @property
    def message_id(self) -> str:
        """The same on every attempt: the JWS's `jti`."""
        ...

    @property
    def typ(self) -> str:
        """The JWS header's `typ`."""
        ...

    def claims(self) -> dict[str, Any]:
        """The message's own claims, beside `iss`, `aud`, `iat`, `exp` and `jti`."""
        ...

    def slack_text(self) -> str:
        """Slack's `text` for it."""
        ...


class WebhookSender:
    def __init__(
        self,
        keys: SigningKeys,
        issuer: str,
        *,
        clock: Callable[[], float],
        resolver: Resolver = system_resolver,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._clock = clock
        self._posters = Posters(resolver)

    async def send(self, hook: WebhookSettings, message: WebhookMessage) -> Outcome:
        body, headers = await self.request(hook, message)
        return await post_outcome(
            self._posters(hook.allow_private_network), hook.url, headers, body, "webhook"
        )

    async def request(
        self, hook: WebhookSettings, message: WebhookMessage
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers of the POST for `hook`'s format."""
        if hook.format == "slack":
            body = json.dumps({"text": message.slack_text()}).encode("utf-8")
            digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=")
            token = await self.token(hook.url, message, body_sha256=digest.decode("ascii"))
            return body, {"Content-Type": "application/json", SIGNATURE_HEADER: token}
        token = await self.token(hook.url, message)
        return token.encode("ascii"), {"Content-Type": JOSE_MEDIA_TYPE}

    async def token(self, audience: str, message: WebhookMessage, **extra: str) -> str:
        signing = await self._keys.active()
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": audience,
            "iat": now,
            "exp": now + TOKEN_SECONDS,
            "jti": message.message_id,
            **message.claims(),
            **extra,
        }
        header = {"typ": message.typ, "alg": signing.alg, "kid": signing.kid}
        payload = json.dumps(claims, separators=(",", ":")).encode("utf-8")
        return jws.serialize_compact(header, payload, signing.key, algorithms=[signing.alg])
