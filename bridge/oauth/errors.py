"""OAuth errors the extensions that `oauth` implements name: resource indicators (RFC 8707),
DPoP (RFC 9449) and token revocation (RFC 7009). RFC 6749's own codes are in `bridge.errors`,
RFC 9396's in `rar.errors`, DTR's in `deferral.errors`."""

from __future__ import annotations

from ..errors import OAuthError


class InvalidTarget(OAuthError):
    """RFC 8707 §2: the `resource` indicator is not acceptable."""

    error = "invalid_target"


class InvalidDPoPProof(OAuthError):
    """RFC 9449 §5: the DPoP proof is missing where required, malformed or invalid."""

    error = "invalid_dpop_proof"


class UseDPoPNonce(OAuthError):
    """RFC 9449 §8: the server wants a fresh nonce in the proof (sent in `DPoP-Nonce`)."""

    error = "use_dpop_nonce"


class UnsupportedTokenType(OAuthError):
    """RFC 7009 §2.2.1: revocation of this token type is not supported."""

    error = "unsupported_token_type"
