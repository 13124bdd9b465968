"""Signing people in as a relying party of the organisation's OpenID Provider (OpenID
Connect Core 1.0, authorization code flow with PKCE): discovery, the authorization request,
the code exchange and the ID token's checks, ending in the AuthZEN subject the ID token
names. No pages and no sessions: the sign-in pages call `UpstreamSignIn.begin` and `finish`.
Its settings are a section of the bridge's configuration (`UpstreamSignInSettings`).
"""

from ..settings import UpstreamSignInSettings
from .authorization import PendingSignIn
from .discovery import ProviderMetadata
from .errors import (
    CodeExchangeFailed,
    DiscoveryFailed,
    IdTokenInvalid,
    InvalidCallback,
    KeysUnavailable,
    ProviderRefused,
    SignInExpired,
    StateMismatch,
    UpstreamSignInError,
)
from .person import SignedInPerson
from .signin import UpstreamSignIn

__all__ = [
    "CodeExchangeFailed",
    "DiscoveryFailed",
    "IdTokenInvalid",
    "InvalidCallback",
    "KeysUnavailable",
    "PendingSignIn",
    "ProviderMetadata",
    "ProviderRefused",
    "SignInExpired",
    "SignedInPerson",
    "StateMismatch",
    "UpstreamSignIn",
    "UpstreamSignInError",
    "UpstreamSignInSettings",
]
