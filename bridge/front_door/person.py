"""Who signed in, as every sign-in method hands it to the session, and as the PDP sees them.

`name` is the access token's `sub` and the AuthZEN `subject.id`; `subject_type` the
`subject.type`; `properties` the `subject.properties` (e.g. claims an upstream OpenID
Provider asserted). `method` says which sign-in method vouched for the person, and `acr`,
`amr` and `auth_time` how and when (OpenID Connect Core §2: an upstream ID token's values; a
local password's are the bridge's own, `step_up.LOCAL_PASSWORD_ACR`): what a step-up
obligation is checked against, and what the access token says (RFC 9470 §6.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..authzen.models import Subject


@dataclass(frozen=True)
class Person:
    name: str
    subject_type: str = "user"
    properties: dict[str, Any] = field(default_factory=dict)
    method: str = "local"
    acr: str | None = None
    amr: tuple[str, ...] = ()
    auth_time: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "subject_type": self.subject_type,
            "properties": self.properties,
            "method": self.method,
            **self.authentication(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Person:
        acr, amr, auth_time = data.get("acr"), data.get("amr"), data.get("auth_time")
        return cls(
            name=str(data["name"]),
            subject_type=str(data.get("subject_type", "user")),
            properties=dict(data.get("properties") or {}),
            method=str(data.get("method", "local")),
            acr=acr if isinstance(acr, str) else None,
            amr=tuple(str(m) for m in amr) if isinstance(amr, list) else (),
            auth_time=auth_time if isinstance(auth_time, int) else None,
        )

    def authentication(self) -> dict[str, Any]:
        """`acr`, `amr` and `auth_time`, those known, as tokens carry them (RFC 9068
        §2.2.1)."""
        found: dict[str, Any] = {}
        if self.acr is not None:
            found["acr"] = self.acr
        if self.amr:
            found["amr"] = list(self.amr)
        if self.auth_time is not None:
            found["auth_time"] = self.auth_time
        return found


def subject_for(person: Person, client_id: str) -> Subject:
    """The AuthZEN subject of a token a person authorised: the person, with the client as
    the actor (AROP §2: `authorization_code` → the end user; act: the client)."""
    properties = {**person.properties, "act": {"sub": client_id}}
    return Subject(type=person.subject_type, id=person.name, properties=properties)
