"""Who signed in: the ID token's claims turned into an AuthZEN subject."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..settings import UpstreamSignInSettings
from .errors import IdTokenInvalid


@dataclass(frozen=True, slots=True)
class SignedInPerson:
    """A person the provider signed in. `name` is the AuthZEN `subject.id` (and the access
    token's `sub`), `subject_type` its `subject.type`, `properties` its `subject.properties`
    (only the configured claims the token carried)."""

    name: str
    subject_type: str
    issuer: str
    properties: Mapping[str, Any] = field(default_factory=dict)
    # When and how the provider authenticated them, when its ID token says (Core §2).
    auth_time: int | None = None
    acr: str | None = None
    amr: tuple[str, ...] | None = None


def person_from_claims(
    claims: Mapping[str, Any], settings: UpstreamSignInSettings
) -> SignedInPerson:
    name = claims.get(settings.name_claim)
    if not isinstance(name, str) or not name.strip():
        raise IdTokenInvalid(
            "name_claim", f"it has no non-empty string claim {settings.name_claim!r} to name them"
        )
    properties = {
        prop: claims[claim] for prop, claim in settings.claim_properties.items() if claim in claims
    }
    auth_time = claims.get("auth_time")
    acr = claims.get("acr")
    amr = claims.get("amr")
    return SignedInPerson(
        name=name,
        subject_type=settings.subject_type,
        issuer=settings.issuer,
        properties=properties,
        # Informational claims of the wrong type are left out rather than refusing the person.
        auth_time=int(auth_time)
        if isinstance(auth_time, int | float) and not isinstance(auth_time, bool)
        else None,
        acr=acr if isinstance(acr, str) else None,
        amr=tuple(amr) if isinstance(amr, list) and all(isinstance(m, str) for m in amr) else None,
    )
