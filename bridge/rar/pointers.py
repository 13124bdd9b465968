"""Derived values: a JSON Pointer (RFC 6901) into an entry, optionally converted.

A profile may hand the PDP a value found deeper in an entry under a name of its own, e.g.
`instructedAmount.amount` as `amount_minor`. Policy languages compare integers well and
decimal strings badly, so a decimal amount can be turned into an exact integer of minor
units ("123.50" at scale 2 → 12350); anything that cannot be converted exactly is refused
rather than rounded, because a rounded amount is a different authorization.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

# The PDP side (Cedar `Long`, most JSON engines) holds signed 64-bit integers exactly.
MIN_INTEGER = -(2**63)
MAX_INTEGER = 2**63 - 1
MAX_SCALE = 18

_DECIMAL = re.compile(r"(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?")
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")
# Longest decimal text worth converting; anything longer cannot fit 64 bits anyway.
_MAX_DECIMAL_CHARS = 64

Conversion = Literal["value", "minor_units"]


class PointerSyntaxError(ValueError):
    """The text is not a JSON Pointer."""


class NotRepresentable(ValueError):
    """The value cannot be converted exactly; the message says why, without the value."""


def parse_pointer(text: str) -> tuple[str, ...]:
    """The reference tokens of a JSON Pointer; `""` is the whole entry."""
    if text == "":
        return ()
    if not text.startswith("/"):
        raise PointerSyntaxError("a JSON Pointer starts with '/'")
    tokens = text[1:].split("/")
    for token in tokens:
        if re.search(r"~(?![01])", token):
            raise PointerSyntaxError("'~' must be followed by 0 or 1 in a JSON Pointer")
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in tokens)


def resolve(document: Any, tokens: tuple[str, ...]) -> tuple[bool, Any]:
    """(True, value) when the pointer names a value in `document`, else (False, None)."""
    current = document
    for token in tokens:
        if isinstance(current, dict):
            if token not in current:
                return False, None
            current = current[token]
        elif isinstance(current, list):
            if not _ARRAY_INDEX.fullmatch(token) or int(token) >= len(current):
                return False, None
            current = current[int(token)]
        else:
            return False, None
    return True, current


def display_path(tokens: tuple[str, ...]) -> str:
    """How a pointer reads inside an error description: `.instructedAmount.amount`, `[0]`."""
    return "".join(f"[{t}]" if _ARRAY_INDEX.fullmatch(t) else f".{t}" for t in tokens)


def to_minor_units(value: Any, scale: int) -> int:
    """`value` (a decimal string or a JSON number) times 10**scale, exactly."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise NotRepresentable("must be a decimal string or a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NotRepresentable("must be a finite number")
        # repr() is the shortest text that reads back as the same float: 0.1 stays "0.1".
        try:
            text = format(Decimal(repr(value)), "f")
        except InvalidOperation:  # pragma: no cover - repr of a finite float always parses
            raise NotRepresentable("must be a decimal string or a number") from None
    else:
        text = str(value)
    if len(text) > _MAX_DECIMAL_CHARS:
        raise NotRepresentable("is too long for a 64-bit integer of minor units")
    match = _DECIMAL.fullmatch(text)
    if match is None:
        raise NotRepresentable("must be a plain decimal number such as 123.45")
    sign, whole, fraction = match.group(1), match.group(2), (match.group(3) or "")
    fraction = fraction.rstrip("0")
    if len(fraction) > scale:
        raise NotRepresentable(f"has more than {scale} decimal places")
    units = int(whole + fraction.ljust(scale, "0"))
    units = -units if sign else units
    if not MIN_INTEGER <= units <= MAX_INTEGER:
        raise NotRepresentable("is too large for a 64-bit integer of minor units")
    return units


@dataclass(frozen=True, slots=True)
class DerivedValue:
    """A profile's `properties`/`context` member: where the value is and how to convert it."""

    pointer: str
    tokens: tuple[str, ...]
    conversion: Conversion = "value"
    scale: int = 0

    def extract(self, entry: dict[str, Any]) -> tuple[bool, Any]:
        """(found, value); raises `NotRepresentable` when the value found cannot convert."""
        found, value = resolve(entry, self.tokens)
        if not found:
            return False, None
        if self.conversion == "minor_units":
            return True, to_minor_units(value, self.scale)
        return True, value
