"""Strict, bounded JSON parsing (I-JSON, RFC 7493) for every JSON text the bridge reads from
the wire: request bodies, JOSE headers and payloads, answers of remote PDPs and services.

Python's `json.loads` is lenient where an authorization decision must not be: it keeps the
last of two equal member names (so two parsers may read one text differently), accepts `NaN`
and `Infinity`, guesses UTF-16 or UTF-32 from bytes, lets lone surrogates through (`"\\ud800"`
is not a Unicode string, and the policy engine refuses it from deep inside), and recurses
without bound. The rules live here once; every parse of untrusted JSON goes through `loads`.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any, NoReturn

# Deeper than any request the bridge serves needs, and well inside what the policy engine
# accepts for a whole request (it stops at 128 levels).
MAX_DEPTH = 64

# Longest member name quoted in full in an error message.
_MAX_NAME = 200
# A `\uD800`..`\uDFFF` escape: the only way a JSON text can carry a surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Strings removed before counting brackets (escapes included), so brackets in them don't count.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class StrictJSONError(ValueError):
    """The text is not strict JSON; the message says why, fit to show to whoever sent it."""


class NotUTF8Error(StrictJSONError):
    """The bytes are not UTF-8."""


class DuplicateMemberError(StrictJSONError):
    """One object names the same member twice; `name` is that member."""

    def __init__(self, name: str) -> None:
        super().__init__(f"duplicate member {name[:_MAX_NAME]!r}")
        self.name = name


class TooDeepError(StrictJSONError):
    """Arrays and objects nest deeper than the parser accepts."""


class NotUnicodeError(StrictJSONError):
    """A string holds a lone surrogate (an escape such as `\\ud800` without its pair)."""


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """`text` parsed as JSON; `StrictJSONError` when it is not UTF-8, not JSON, nests deeper
    than `max_depth`, or holds a string that is not Unicode.

    Refused beyond what `json.loads` refuses: bytes that are not UTF-8, a member name that
    appears twice in one object, `NaN`, `Infinity` and `-Infinity`, lone surrogates, and
    nesting beyond `max_depth` (checked before parsing, so a deep text costs no recursion).
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NotUTF8Error(str(exc)) from None
    _check_depth(text, max_depth)
    if text.startswith("\ufeff"):
        raise StrictJSONError("Unexpected UTF-8 BOM (decode using utf-8-sig)")
    try:
        value = _DECODER.decode(text)
    except StrictJSONError:
        raise
    except ValueError as exc:  # includes json.JSONDecodeError
        raise StrictJSONError(str(exc)) from None
    except RecursionError:  # not reached within the depth bound; kept as a last guard
        raise TooDeepError("too deeply nested") from None
    if "\\u" in text and _SURROGATE_ESCAPE.search(text) and _holds_surrogate(value):
        raise NotUnicodeError("a string holds a lone surrogate (not a Unicode scalar value)")
    return value


def _check_depth(text: str, max_depth: int) -> None:
    # Nesting cannot exceed the number of opening brackets: most texts are settled here.
    if text.count("[") + text.count("{") <= max_depth:
        return
    outside_strings = _STRING.sub("", text)
    steps = (_STEP[b] for b in _BRACKETS.findall(outside_strings))
    if max(accumulate(steps), default=0) > max_depth:
        raise TooDeepError(f"nested deeper than {max_depth} levels")


def _holds_surrogate(value: Any) -> bool:
    """True when some string (member names included) in `value` has a lone surrogate.
    Iterative: `value` is bounded in depth, but walked without recursion anyway."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


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


# Built once: `json.loads` with hooks builds a decoder (and its scanner) on every call.
_DECODER = json.JSONDecoder(object_pairs_hook=_unique_members, parse_constant=_no_constant)
