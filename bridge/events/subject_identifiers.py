"""Subject Identifiers (RFC 9493) in SSF events (SSF 1.0 §3), and the AuthZEN subjects they
name.

A received event's `sub_id` names the person the bridge knows as `{"type": <the
transmitter's subject_type>, "id": ...}` when it is, or holds under `user`, an `opaque` id, an
`email` address, or an `iss_sub` whose `iss` is the transmitter's. A complex subject that
also names a `session`, `device` or `application` is narrower than the person (SSF §3.3: the
event applies to what matches all its members): the bridge keeps no sessions of other
issuers, so it finds nothing of that subject to act on.

The bridge's own events name a person as `{"format": "opaque", "id": <subject id>}`, and one
of its access tokens as `{"format": "jwt_id", "iss": <issuer>, "jti": ...}` (SSF §3.5.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import rfc8785

# Complex subject members narrower than a person: a subject naming one is not the person.
_NARROWER = frozenset({"session", "device", "application"})
_MAX_ID = 512


@dataclass(frozen=True)
class NamedSubject:
    """The AuthZEN subject an event names."""

    type: str
    id: str

    def as_json(self) -> dict[str, str]:
        return {"type": self.type, "id": self.id}


def person_of(sub_id: Any, *, subject_type: str, issuer: str) -> NamedSubject | None:
    """The person `sub_id` names, as the AuthZEN subject of `subject_type`; None when it names
    none the bridge can tell (another format, another issuer's `iss_sub`, a session)."""
    if not isinstance(sub_id, dict):
        return None
    if sub_id.get("format") == "complex":
        if _NARROWER & set(sub_id):
            return None
        return person_of(sub_id.get("user"), subject_type=subject_type, issuer=issuer)
    found = _simple_id(sub_id, issuer)
    if found is None or not 0 < len(found) <= _MAX_ID:
        return None
    return NamedSubject(subject_type, found)


def _simple_id(sub_id: dict[str, Any], issuer: str) -> str | None:
    kind = sub_id.get("format")
    value: Any = None
    if kind == "opaque":
        value = sub_id.get("id")
    elif kind == "email":
        value = sub_id.get("email")
    elif kind == "iss_sub" and sub_id.get("iss") == issuer:
        value = sub_id.get("sub")
    return value if isinstance(value, str) else None


def opaque(identifier: str) -> dict[str, str]:
    return {"format": "opaque", "id": identifier}


def jwt_id(issuer: str, jti: str) -> dict[str, str]:
    return {"format": "jwt_id", "iss": issuer, "jti": jti}


def canonical(sub_id: dict[str, Any]) -> str:
    """One spelling of a Subject Identifier (RFC 8785), by which a stream's subjects are kept."""
    return rfc8785.dumps(sub_id).decode("utf-8")


def matches(added: dict[str, Any], subject: dict[str, Any]) -> bool:
    """SSF §8.1.3.1: simple subjects match when identical; complex ones when each member
    either names is identical, or missing from one of them."""
    if added.get("format") != "complex" or subject.get("format") != "complex":
        return added == subject
    return all(
        added[member] == subject[member]
        for member in set(added) & set(subject)
        if member != "format"
    )
