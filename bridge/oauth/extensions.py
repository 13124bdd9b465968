"""Extension points of the OAuth part: what rides on every token request without any grant
knowing of it (as PKCE plugs into authlib's grants), and what revocation and metadata learn
from it. The Deferred Token Response (`deferral.extension`) is one.

An extension is installed with `OAuth.install(extension)`; it implements every method below
(`NoExtension` is a base that does nothing, to inherit from).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ..authzen.models import Decision
from ..rar.translate import PlannedEvaluation
from .clients import Client
from .dpop import DPoPProof
from .grants.base import Principal, TokenRequest
from .requested_access import RequestedAccess


class TokenExtension(Protocol):
    # Form parameters it reads on the token request of every extensible grant.
    parameters: frozenset[str]

    def check(self, request: TokenRequest, *, proof_sent: bool) -> None:
        """Refuse a request it cannot serve, before the DPoP proof is verified (so it can
        name its own error for a missing proof) and before anything is decided."""
        ...

    async def on_denial(
        self,
        request: TokenRequest,
        grant_type: str,
        principal: Principal,
        access: RequestedAccess,
        planned: Sequence[PlannedEvaluation],
        decisions: Sequence[Decision],
    ) -> None:
        """The PDP denied some of what was asked. Raise the answer to send instead of the
        refusal (e.g. the deferred response), or return to let the refusal go out."""
        ...

    def denial_hint(self, decision: Decision) -> str | None:
        """A sentence added to the refusal of this denied decision, e.g. how to ask again."""
        ...

    def revocable_token_types(self) -> list[str]:
        """Token type URIs `revoke` handles (published in the metadata)."""
        ...

    async def revoke(self, client: Client, token: str, proof: DPoPProof | None) -> None:
        """`token` was sent to the revocation endpoint by `client`: act on it if it is
        yours (RFC 7009 answers 200 whatever happens). Raise an `OAuthError` only for a
        refusal the client must see (a proof from the wrong key)."""
        ...

    def metadata(self) -> dict[str, Any]:
        """Members to add to the authorization server metadata (RFC 8414)."""
        ...


class NoExtension:
    """Does nothing at every point; extensions inherit and override what they need."""

    parameters: frozenset[str] = frozenset()

    def check(self, request: TokenRequest, *, proof_sent: bool) -> None:
        return None

    async def on_denial(
        self,
        request: TokenRequest,
        grant_type: str,
        principal: Principal,
        access: RequestedAccess,
        planned: Sequence[PlannedEvaluation],
        decisions: Sequence[Decision],
    ) -> None:
        return None

    def denial_hint(self, decision: Decision) -> str | None:
        return None

    def revocable_token_types(self) -> list[str]:
        return []

    async def revoke(self, client: Client, token: str, proof: DPoPProof | None) -> None:
        return None

    def metadata(self) -> dict[str, Any]:
        return {}
