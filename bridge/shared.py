"""What several parts of the bridge share, made once per process: the store, the key that
protects secrets at rest, the signing keys, one HTTP client, the trusted issuers. Only the
composition (`app`, `cli`) makes one; parts are handed the pieces they use."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .events.receivers import management_audience
from .jose.sealing import kek_beside, load_key_encryption_key
from .jose.signing_keys import JWKS_PATH, SigningKeys
from .jose.trusted_issuers import TrustedIssuers
from .settings import Settings
from .store.backends import store_for
from .store.contract import Store

log = logging.getLogger("bridge")


@dataclass
class Shared:
    store: Store
    kek: bytes
    keys: SigningKeys
    http: httpx.AsyncClient
    issuers: TrustedIssuers

    @classmethod
    def from_settings(cls, settings: Settings) -> Shared:
        store = store_for(settings)
        kek_file = settings.resolve(settings.oauth.key_encryption_key_file)
        kek = load_key_encryption_key(kek_file)
        sqlite = settings.storage.url is None  # a PostgreSQL database has no folder here
        if sqlite and kek_beside(kek_file, settings.resolve(settings.storage.path)):
            log.warning(
                "the key-encryption key %s sits beside the database: a copy of that folder "
                "opens every sealed secret. Keep it elsewhere (oauth.key_encryption_key_file) "
                "or pass it in BRIDGE_KEY_ENCRYPTION_KEY (docs/operations.md)",
                kek_file,
            )
        http = httpx.AsyncClient(timeout=5.0, follow_redirects=False)
        return cls(
            store=store,
            kek=kek,
            keys=SigningKeys(store, kek, settings.oauth.signing_alg),
            http=http,
            # Approver tokens are for the approver API only, receivers' tokens for the stream
            # management API only: never a subject token.
            issuers=TrustedIssuers(
                settings.oauth.trusted_issuers,
                settings.issuer,
                http,
                reserved_audiences=frozenset(
                    {settings.approver_audience, management_audience(settings)}
                ),
            ),
        )

    async def start(self) -> None:
        await self.store.open()
        await self.keys.ensure()

    async def stop(self) -> None:
        await self.http.aclose()
        await self.store.close()

    def jwks_route(self) -> Route:
        """Access tokens, binding tokens and callbacks are all verified against these keys."""

        async def jwks(request: Request) -> Response:
            body: dict[str, Any] = await self.keys.jwks()
            # Short: a rotation must reach verifiers quickly.
            return JSONResponse(body, headers={"Cache-Control": "max-age=60"})

        return Route(JWKS_PATH, jwks, methods=["GET"])
