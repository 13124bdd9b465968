"""The sign-in as a whole: `begin` sends the person to the provider, `finish` reads the
answer at the callback and names the person, or raises an `UpstreamSignInError`.

The part holds no session and serves no page: the caller keeps the `PendingSignIn` in the
browser's server-side session between the two calls, serves the callback URL, and shows
`error.safe_message` when `finish` refuses.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping, Sequence

import httpx

from ..outbound import Resolver, system_resolver
from ..settings import UpstreamSignInSettings
from .authorization import PendingSignIn, authorization_url, new_pending
from .discovery import Discovery, ProviderMetadata
from .errors import (
    InvalidCallback,
    ProviderRefused,
    SignInExpired,
    StateMismatch,
    UpstreamSignInError,
)
from .id_token import Expected, verify_id_token
from .person import SignedInPerson, person_from_claims
from .provider_http import ProviderHTTP
from .provider_keys import ProviderKeys
from .token_exchange import OAUTH_ERROR_TEXT, ClientCredentials, exchange_code

# Longer than any code a provider issues; a longer one is not sent on.
MAX_CODE_LENGTH = 4096


class UpstreamSignIn:
    """Signs people in at one OpenID Provider. One instance per provider and process: it
    keeps the provider's metadata and keys between sign-ins.

    `http` is the process's shared client (it should not follow redirects); `resolver` and
    `clock` (seconds since the epoch) are for tests of their own.
    """

    def __init__(
        self,
        settings: UpstreamSignInSettings,
        http: httpx.AsyncClient,
        *,
        resolver: Resolver = system_resolver,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._clock = clock
        # Read now, so a missing secret file fails at start, not at the first sign-in.
        self._credentials = ClientCredentials(
            settings.client_id, settings.read_client_secret(), settings.token_endpoint_auth_method
        )
        fetcher = ProviderHTTP(
            http,
            allow_private=settings.allow_private_network,
            timeout_seconds=settings.timeout_seconds,
            resolver=resolver,
        )
        self._fetcher = fetcher
        self._discovery = Discovery(
            fetcher,
            issuer=settings.issuer,
            auth_method=settings.token_endpoint_auth_method,
            max_age_seconds=settings.metadata_max_age_seconds,
        )
        self._keys = ProviderKeys(fetcher, min_refresh_seconds=settings.jwks_min_refresh_seconds)

    @property
    def display_name(self) -> str:
        """For the button: "Sign in with <display_name>"."""
        return self.settings.display_name

    async def metadata(self) -> ProviderMetadata:
        """The provider's metadata (read when not kept); `DiscoveryFailed` when it cannot be
        had. For a readiness check or `bridge check`."""
        return await self._discovery.metadata()

    async def begin(
        self, callback_url: str, *, acr_values: Sequence[str] = ()
    ) -> tuple[str, PendingSignIn]:
        """The URL to send the person to, and the pending sign-in to keep in their session.
        `callback_url` is the bridge's redirect URI, as registered at the provider (an
        absolute http(s) URL, else `ValueError`); `acr_values`, the authentication context
        classes asked for (a step-up; whether one was reached, the ID token's `acr` says).
        Raises `DiscoveryFailed`."""
        metadata = await self._discovery.metadata()
        pending = new_pending(metadata.issuer, callback_url, self._clock())
        url = authorization_url(
            metadata.authorization_endpoint,
            client_id=self.settings.client_id,
            scope=self.settings.requested_scope,
            pending=pending,
            acr_values=acr_values,
        )
        return url, pending

    async def finish(
        self, pending: PendingSignIn, callback_query: Mapping[str, str]
    ) -> SignedInPerson:
        """The person the provider's answer (`callback_query`, the callback's query
        parameters) names. Raises an `UpstreamSignInError`: `StateMismatch`,
        `SignInExpired`, `InvalidCallback`, `ProviderRefused`, `DiscoveryFailed`,
        `CodeExchangeFailed`, `KeysUnavailable` or `IdTokenInvalid`. Each pending sign-in
        is meant for one call: the caller drops it from the session before calling."""
        state = callback_query.get("state")
        if not isinstance(state, str) or not hmac.compare_digest(
            state.encode("utf-8"), pending.state.encode("utf-8")
        ):
            raise StateMismatch(
                "the callback's state is missing"
                if not state
                else "the callback's state is not this session's"
            )
        if pending.issuer != self.settings.issuer:
            raise InvalidCallback("the pending sign-in was started at another provider")
        now = self._clock()
        if now - pending.created_at > self.settings.pending_lifetime_seconds:
            raise SignInExpired("the person came back after the pending sign-in expired")
        metadata = await self._discovery.metadata()
        self._check_iss(callback_query, metadata)
        error = callback_query.get("error")
        if error is not None:
            raise _refusal(error, callback_query.get("error_description"))
        code = callback_query.get("code")
        if not code or len(code) > MAX_CODE_LENGTH:
            raise InvalidCallback("the callback has neither a code nor an error")
        id_token = await exchange_code(
            self._fetcher, metadata.token_endpoint, self._credentials, code, pending
        )
        claims = await verify_id_token(
            id_token,
            keys=self._keys,
            jwks_uri=metadata.jwks_uri,
            expected=Expected(
                issuer=metadata.issuer,
                client_id=self.settings.client_id,
                nonce=pending.nonce,
                algorithms=frozenset(self.settings.algorithms),
                leeway_seconds=self.settings.leeway_seconds,
                max_age_seconds=self.settings.max_id_token_age_seconds,
                now=self._clock(),
            ),
        )
        return person_from_claims(claims, self.settings)

    def _check_iss(self, query: Mapping[str, str], metadata: ProviderMetadata) -> None:
        # RFC 9207: an answer naming another issuer came from another provider (mix-up);
        # a provider that promises `iss` and leaves it out is not trusted to have sent it.
        iss = query.get("iss")
        if iss is None:
            if metadata.iss_parameter_supported:
                raise InvalidCallback("the provider's answer does not name it (iss)")
            return
        if iss != metadata.issuer:
            raise InvalidCallback("the answer names another issuer (iss)")


def _refusal(error: str, description: str | None) -> UpstreamSignInError:
    if not OAUTH_ERROR_TEXT.fullmatch(error):
        return InvalidCallback("the provider's answer has a malformed error code")
    detail = f"the provider answered error={error}"
    if description is not None and OAUTH_ERROR_TEXT.fullmatch(description):
        detail += f" ({description[:200]})"
    return ProviderRefused(detail, error)
