"""Who signed in, as every sign-in method hands it to the session, and as the PDP sees them.

`name` is the access token's `sub` and the AuthZEN `subject.id`; `subject_type` the
`subject.type`; `properties` the `subject.properties` (e.g. claims an upstream OpenID
Provider asserted). `method` says which sign-in method vouched for the person.
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

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "subject_type": self.subject_type,
            "properties": self.properties,
            "method": self.method,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Person:
        return cls(
            name=str(data["name"]),
            subject_type=str(data.get("subject_type", "user")),
            properties=dict(data.get("properties") or {}),
            method=str(data.get("method", "local")),
        )


def subject_for(person: Person, client_id: str) -> Subject:
    """The AuthZEN subject of a token a person authorised: the person, with the client as
    the actor (AROP §2: `authorization_code` → the end user; act: the client)."""
    properties = {**person.properties, "act": {"sub": client_id}}
    return Subject(type=person.subject_type, id=person.name, properties=properties)
