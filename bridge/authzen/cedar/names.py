"""How AuthZEN names and values become Cedar names and values.

- An AuthZEN `type` that is a valid Cedar entity type name is used verbatim; any other string
  is escaped as `AuthZEN_<hex of its UTF-8>`. Names that already start with `AuthZEN_` are
  escaped too, so two AuthZEN types never share a Cedar type.
- An action name `n` is the entity `Action::"n"`.
- Property values are JSON, but Cedar has no null and no floats, and reads some object shapes
  as entity references: those are dropped or converted (see `to_cedar_value`).
"""

from __future__ import annotations

import re
from typing import Any

EntityUid = tuple[str, str]
"""(Cedar entity type, id)."""

ACTION_TYPE = "Action"

# Cedar identifiers that may not name a type (or a path segment of one).
_RESERVED = frozenset({"true", "false", "if", "then", "else", "in", "is", "like", "has", "__cedar"})
_IDENT = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*\Z")
_ESCAPE_PREFIX = "AuthZEN_"

_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
# Cedar `decimal` holds four fractional digits and fits a signed 64-bit integer scaled by 10^4.
_DECIMAL_LIMIT = 922_337_203_685_477


def cedar_type(authzen_type: str) -> str:
    cached = _CEDAR_TYPES.get(authzen_type)
    if cached is not None:
        return cached
    segments = authzen_type.split("::")
    if not authzen_type.startswith(_ESCAPE_PREFIX) and all(
        _IDENT.match(s) and s not in _RESERVED for s in segments
    ):
        converted = authzen_type
    else:
        converted = _ESCAPE_PREFIX + authzen_type.encode("utf-8").hex()
    # Types come from requests: the cache is bounded, in entries and in their length.
    if len(_CEDAR_TYPES) < _MAX_CACHED_TYPES and len(authzen_type) <= _MAX_CACHED_LENGTH:
        _CEDAR_TYPES[authzen_type] = converted
    return converted


# Every request names two types, mostly the same few: each is worked out once.
_CEDAR_TYPES: dict[str, str] = {}
_MAX_CACHED_TYPES = 4096
_MAX_CACHED_LENGTH = 200


class _Dropped:
    """Marks a value Cedar cannot hold; the member or element carrying it is left out."""


DROPPED = _Dropped()


def to_cedar_value(value: Any) -> Any:
    """A JSON value as Cedar's JSON value format, or `DROPPED`.

    - null → dropped (Cedar has no null; an absent attribute is what `has` tests for);
    - integers outside 64 bits → dropped; integral floats → integers;
    - other floats → `decimal` when four fractional digits hold them exactly, else dropped;
    - object members whose names start with `__` → dropped, so a request can never smuggle in
      an entity reference (`__entity`) or an extension value (`__extn`).
    """
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if _I64_MIN <= value <= _I64_MAX else DROPPED
    if isinstance(value, float):
        return _float_value(value)
    if isinstance(value, list):
        return [v for v in map(to_cedar_value, value) if v is not DROPPED]
    if isinstance(value, dict):
        return cedar_record(value)
    return DROPPED


def cedar_record(obj: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, raw in obj.items():
        if key.startswith("__"):
            continue
        converted = to_cedar_value(raw)
        if converted is not DROPPED:
            out[key] = converted
    return out


def _float_value(value: float) -> Any:
    if value != value or value in (float("inf"), float("-inf")):
        return DROPPED
    if value.is_integer():
        as_int = int(value)
        return as_int if _I64_MIN <= as_int <= _I64_MAX else DROPPED
    if abs(value) >= _DECIMAL_LIMIT or round(value, 4) != value:
        return DROPPED
    return {"__extn": {"fn": "decimal", "arg": f"{value:.4f}"}}
