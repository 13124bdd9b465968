"""What can go wrong while a person signs in at the provider, one exception per cause.

Every error carries two texts: `safe_message`, fit for the error page a person sees (it names
no secret, no token, no code and nothing the provider chose to say), and the exception's own
message, a detail for the operator's log (also free of secrets and tokens). None of them is
an HTTP error: the pages that call this part decide how to show them, and never answer 500.
"""

from __future__ import annotations

from typing import ClassVar


class UpstreamSignInError(Exception):
    """The sign-in at the provider did not succeed; `str(error)` is the log's detail."""

    safe_message: ClassVar[str] = "Signing in did not work. Please start again."

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class DiscoveryFailed(UpstreamSignInError):
    """The provider's metadata could not be read, or does not describe the configured
    provider (another issuer, no `code` flow, no PKCE with S256, an unusable endpoint)."""

    safe_message = "The sign-in service cannot be reached right now. Please try again later."


class KeysUnavailable(UpstreamSignInError):
    """The provider's signing keys (its `jwks_uri`) could not be read."""

    safe_message = "The sign-in service cannot be reached right now. Please try again later."


class SignInExpired(UpstreamSignInError):
    """The person came back after the pending sign-in's lifetime."""

    safe_message = "The sign-in took too long. Please start again."


class StateMismatch(UpstreamSignInError):
    """The answer's `state` is missing or is not the one this browser's sign-in sent: it
    belongs to another sign-in (or was forged), and is not acted on."""

    safe_message = "This sign-in does not belong to this browser session. Please start again."


class InvalidCallback(UpstreamSignInError):
    """The answer at the callback is neither a code nor an error, or names another issuer
    (RFC 9207 `iss`)."""


class ProviderRefused(UpstreamSignInError):
    """The provider answered with `error=...` (the person declined, or the provider refused
    the request). `error` is the provider's code, kept only when it is a well-formed one."""

    safe_message = "The sign-in service did not sign you in."

    def __init__(self, detail: str, error: str) -> None:
        super().__init__(detail)
        self.error = error

    @property
    def declined(self) -> bool:
        """The person (or the provider on their behalf) said no: `access_denied`."""
        return self.error == "access_denied"


class CodeExchangeFailed(UpstreamSignInError):
    """The provider's token endpoint did not turn the code into an ID token."""


class IdTokenInvalid(UpstreamSignInError):
    """The provider's ID token failed a check; `reason` names which, e.g. `issuer`,
    `audience`, `azp`, `expired`, `iat`, `nonce`, `algorithm`, `unknown_key`, `signature`,
    `malformed`, `subject`, `name_claim`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"the ID token was refused ({reason}): {detail}")
        self.reason = reason
