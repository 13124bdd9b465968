"""What several parts of the bridge share, made once per process: the store, the key that
protects secrets at rest, the signing keys, one HTTP client, the trusted issuers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .jose.sealing import load_key_encryption_key
from .jose.signing_keys import SigningKeys
from .jose.trusted_issuers import TrustedIssuers
from .oauth.metadata import JWKS_PATH
from .settings import Settings
from .store.sqlite import SQLiteStore


@dataclass
class Shared:
    store: SQLiteStore
    kek: bytes
    keys: SigningKeys
    http: httpx.AsyncClient
    issuers: TrustedIssuers

    @classmethod
    def from_settings(cls, settings: Settings) -> Shared:
        store = SQLiteStore(settings.resolve(settings.storage.path))
        kek = load_key_encryption_key(settings.resolve(settings.oauth.key_encryption_key_file))
        http = httpx.AsyncClient(timeout=5.0, follow_redirects=False)
        return cls(
            store=store,
            kek=kek,
            keys=SigningKeys(store, kek, settings.oauth.signing_alg),
            http=http,
            issuers=TrustedIssuers(settings.oauth.trusted_issuers, settings.issuer, http),
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
