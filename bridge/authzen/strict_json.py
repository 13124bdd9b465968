"""Strict JSON parsing (I-JSON, RFC 7493) for every body the bridge reads from the wire.

Python's `json.loads` is lenient where an authorization decision must not be: it keeps the
last of two equal member names (so two parsers may read one body differently), accepts `NaN`
and `Infinity`, and guesses UTF-16 or UTF-32 from bytes. Both sides of the AuthZEN API read
JSON, the bodies PEPs send us and the answers remote PDPs give, so the rules live here once.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

# Longest member name quoted in full in an error message.
_MAX_NAME = 200


class StrictJSONError(ValueError):
    """The text is not strict JSON; the message says why, fit to show to whoever sent it."""


class NotUTF8Error(StrictJSONError):
    """The bytes are not UTF-8."""


class DuplicateMemberError(StrictJSONError):
    """One object names the same member twice; `name` is that member."""

    def __init__(self, name: str) -> None:
        super().__init__(f"duplicate member {name[:_MAX_NAME]!r}")
        self.name = name


def loads(text: str | bytes) -> Any:
    """`text` parsed as JSON; `StrictJSONError` when it is not UTF-8, not JSON, or too deep.

    Refused beyond what `json.loads` refuses: bytes that are not UTF-8, a member name that
    appears twice in one object, `NaN`, `Infinity` and `-Infinity`. Nesting too deep for the
    parser is refused as well, rather than escaping as a `RecursionError`.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NotUTF8Error(str(exc)) from None
    try:
        return json.loads(text, object_pairs_hook=_unique_members, parse_constant=_no_constant)
    except StrictJSONError:
        raise
    except ValueError as exc:  # includes json.JSONDecodeError
        raise StrictJSONError(str(exc)) from None
    except RecursionError:
        raise StrictJSONError("too deeply nested") from None


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise DuplicateMemberError(name)
            seen.add(name)
    return obj


def _no_constant(name: str) -> NoReturn:
    # NaN and Infinity are not JSON, whatever Python's parser accepts by default.
    raise StrictJSONError(f"{name} is not JSON")
