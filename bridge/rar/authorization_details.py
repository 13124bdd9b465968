"""Validating the `authorization_details` parameter (RFC 9396) before anything is decided.

The checks run in the bridge's fixed order (AROP notes §9), each over every entry before
the next begins: strict JSON → a non-empty array within the size limit → every element an
object with a non-empty string `type` → every type known → every type allowed for the
client → the common fields of the right JSON types and grammars → each type's JSON Schema.
A fixed order makes the first reported problem predictable for client developers and for
tests; the cheap structural checks come first so a bad request never reaches schema
validation. Every
refusal is `invalid_authorization_details` with a description naming the entry.
"""

from __future__ import annotations

from typing import Any

from ..grammar import has_control_character, is_uri
from ..jose.strict_json import DuplicateMemberError, StrictJSONError, loads
from .errors import InvalidAuthorizationDetails
from .profiles import ProfileSet
from .schema_messages import first_problem, show

PARAMETER = "authorization_details"
# RFC 9396 §2.2 common data fields and the JSON type each must have.
COMMON_ARRAYS = ("locations", "actions", "datatypes", "privileges")
COMMON_STRINGS = ("identifier",)

Entry = dict[str, Any]

# Clients repeat the same requests; schema validation is the dearest step of a token request,
# so the last few thousand valid parameter values are remembered (as text, not as entries).
VALID_DETAILS_REMEMBERED = 4096


def parse_authorization_details(
    raw: str,
    profiles: ProfileSet,
    *,
    allowed_types: frozenset[str] | None,
    max_entries: int,
) -> list[Entry]:
    """The validated entries of a form-encoded `authorization_details` value (JSON text).

    `allowed_types` are the client's registered `authorization_details_types`; None allows
    every type a profile defines. Raises `InvalidAuthorizationDetails`.
    """
    key = (raw, allowed_types, max_entries)
    if key in profiles.valid_details:
        # Checked before against the same (immutable) profiles: only the parse is redone,
        # so every caller still gets entries of its own.
        profiles.valid_details.move_to_end(key)
        entries: list[Entry] = loads(raw)
        return entries
    try:
        value = loads(raw)
    except DuplicateMemberError as exc:
        raise _refuse(f"{PARAMETER}: duplicate member {show(exc.name)}") from None
    except StrictJSONError as exc:
        raise _refuse(f"{PARAMETER}: not valid JSON ({exc})") from None
    entries = check_authorization_details(
        value, profiles, allowed_types=allowed_types, max_entries=max_entries
    )
    profiles.valid_details[key] = None
    if len(profiles.valid_details) > VALID_DETAILS_REMEMBERED:
        profiles.valid_details.popitem(last=False)
    return entries


def check_authorization_details(
    value: Any,
    profiles: ProfileSet,
    *,
    allowed_types: frozenset[str] | None,
    max_entries: int,
) -> list[Entry]:
    """The same checks for a value already parsed (e.g. a JSON array in a request object)."""
    if not isinstance(value, list):
        raise _refuse(f"{PARAMETER}: must be a JSON array")
    if not value:
        raise _refuse(f"{PARAMETER}: must not be empty")
    if len(value) > max_entries:
        raise _refuse(f"{PARAMETER}: more than {max_entries} entries")
    entries = [_typed_entry(index, element) for index, element in enumerate(value)]
    for index, entry in enumerate(entries):
        if entry["type"] not in profiles:
            raise _refuse(f"{_at(index)}: unknown type {show(entry['type'])}")
    if allowed_types is not None:
        for index, entry in enumerate(entries):
            if entry["type"] not in allowed_types:
                raise _refuse(
                    f"{_at(index)}: type {show(entry['type'])} is not allowed for this client"
                )
    for index, entry in enumerate(entries):
        _check_common_fields(index, entry)
    for index, entry in enumerate(entries):
        profile = profiles.get(entry["type"])
        assert profile is not None
        problem = first_problem(list(profile.validator.iter_errors(entry)), _at(index))
        if problem is not None:
            raise _refuse(problem)
    return entries


def _typed_entry(index: int, element: Any) -> Entry:
    if not isinstance(element, dict):
        raise _refuse(f"{_at(index)}: must be an object")
    if "type" not in element:
        raise _refuse(f'{_at(index)}: "type" is required')
    if not isinstance(element["type"], str) or not element["type"]:
        raise _refuse(f"{_at(index)}.type: must be a non-empty string")
    return element


def _check_common_fields(index: int, entry: Entry) -> None:
    """RFC 9396 §2.2: the common fields' JSON types; `locations` are URIs, and none of these
    identifiers may hold a control character (they end up in the access token)."""
    for name in COMMON_ARRAYS:
        if name not in entry:
            continue
        items = entry[name]
        if not isinstance(items, list):
            raise _refuse(f"{_at(index)}.{name}: must be an array of strings")
        for position, item in enumerate(items):
            where = f"{_at(index)}.{name}[{position}]"
            if not isinstance(item, str):
                raise _refuse(f"{where}: must be a string")
            if name == "locations" and not is_uri(item):
                raise _refuse(f"{where}: must be an absolute URI (RFC 3986)")
            if has_control_character(item):
                raise _refuse(f"{where}: must not contain control characters")
    for name in COMMON_STRINGS:
        if name not in entry:
            continue
        if not isinstance(entry[name], str):
            raise _refuse(f"{_at(index)}.{name}: must be a string")
        if has_control_character(entry[name]):
            raise _refuse(f"{_at(index)}.{name}: must not contain control characters")


def _at(index: int) -> str:
    return f"{PARAMETER}[{index}]"


def _refuse(description: str) -> InvalidAuthorizationDetails:
    return InvalidAuthorizationDetails(description)
