"""What every grant receives and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ...authzen.models import Subject
from ..clients import Client
from ..dpop import DPoPProof
from ..form import Form


@dataclass(frozen=True)
class TokenRequest:
    form: Form
    client: Client
    proof: DPoPProof | None


@dataclass(frozen=True)
class Principal:
    """Who the token acts as, and for whom it is decided.

    `subject` goes to the PDP (with `properties.act` when someone acts for the principal);
    `token_sub` and `act` become the access token's `sub` and `act` claims.
    """

    subject: Subject
    token_sub: str
    act: dict[str, Any] | None = None
    # What an earlier grant fixed (refresh): the request may keep or narrow it, never widen.
    granted_details: list[dict[str, Any]] | None = None
    granted_scope: list[str] | None = None
    granted_resource: list[str] | None = None
    refresh: RefreshContext | None = None


@dataclass(frozen=True)
class RefreshContext:
    token_hash: str
    family_id: str
    expires_at: float
    jkt: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Grant(Protocol):
    grant_type: str

    async def principal(self, request: TokenRequest) -> Principal: ...


def subject_with_actor(subject_type: str, subject_id: str, act: dict[str, Any] | None) -> Subject:
    """The AuthZEN subject; an actor goes in `properties.act` (AROP §2)."""
    return Subject(
        type=subject_type, id=subject_id, properties={"act": act} if act is not None else None
    )
