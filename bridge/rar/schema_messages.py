"""One readable sentence for a JSON Schema failure of an `authorization_details` entry.

jsonschema's own messages quote values with Python's repr (`'export' is not one of
['read']`) and quote them whole, however long. The text goes back to a client developer in
`error_description`, so it is rebuilt here: the path of the offending member, JSON quoting,
and every shown value cut short.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jsonschema.exceptions import ValidationError, best_match

from .json_lines import JSONPath

SHOWN_CHARS = 40

_TYPE_WORDS = {
    "string": "a string",
    "array": "an array",
    "object": "an object",
    "number": "a number",
    "integer": "an integer",
    "boolean": "a boolean",
    "null": "null",
}


def show(value: Any, limit: int = SHOWN_CHARS) -> str:
    """`value` as JSON, cut to about `limit` characters."""
    if isinstance(value, str) and len(value) > limit:
        return json.dumps(value[: limit - 3] + "...")
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# OAuth's error_description may not hold a backslash (RFC 6749 §5.2), so a pattern is shown
# in an equivalent form without one: an escaped character as a one-character class (`\\.`
# as `[.]`; inside a class, as itself), `\\d` as `[0-9]`. A pattern with other escapes
# (`\\w`, `\\b`, ...) is not quoted.
_DIGITS = "0-9"


def without_backslashes(pattern: str) -> str | None:
    """`pattern` written without backslashes, meaning the same; None when it cannot be."""
    out: list[str] = []
    in_class = False
    chars = iter(pattern)
    for char in chars:
        if char != "\\":
            if char == "[" and not in_class:
                in_class = True
            elif char == "]" and in_class and out and out[-1] not in ("[", "[^"):
                in_class = False
            out.append(char)
            continue
        escaped = next(chars, None)
        if escaped is None:
            return None
        if escaped == "d":
            out.append(_DIGITS if in_class else f"[{_DIGITS}]")
        elif escaped.isalnum() or escaped.isspace() or (in_class and escaped in "-^]\\"):
            return None
        elif in_class:
            out.append(escaped)
        elif escaped in "^\\":
            return None
        else:
            out.append(f"[{escaped}]")
    return "".join(out)


def _cut(text: str, limit: int = 2 * SHOWN_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def where(prefix: str, path: JSONPath) -> str:
    """`authorization_details[0]` + `("actions", 2)` → `authorization_details[0].actions[2]`."""
    return prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def first_problem(errors: list[ValidationError], prefix: str) -> str | None:
    """The most relevant failure (jsonschema's `best_match`) as `<path>: <sentence>`."""
    error = best_match(errors)
    if error is None:
        return None
    return f"{where(prefix, tuple(error.absolute_path))}: {sentence(error)}"


def sentence(error: ValidationError) -> str:
    keyword = error.validator
    expected: Any = error.validator_value
    value = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    if keyword in ("additionalProperties", "unevaluatedProperties") and isinstance(value, dict):
        extra = _undeclared(value, schema)
        if extra:
            return f"unknown member {show(extra[0])}"
    if keyword == "required" and isinstance(value, dict):
        missing = [name for name in expected if name not in value]
        if missing:
            return f"{show(missing[0])} is required"
    if keyword == "dependentRequired" and isinstance(value, dict):
        for name, needs in expected.items():
            lacking = [n for n in needs if n not in value]
            if name in value and lacking:
                return f"{show(lacking[0])} is required when {show(name)} is present"
    simple = _simple(keyword, expected, value)
    if simple is not None:
        return simple
    if keyword is None:  # a `false` subschema
        return "is not allowed here"
    return f"does not match the type's schema ({keyword})"


def _simple(keyword: Any, expected: Any, value: Any) -> str | None:
    if keyword == "type":
        kinds = [expected] if isinstance(expected, str) else list(expected)
        return "must be " + " or ".join(_TYPE_WORDS.get(k, k) for k in kinds)
    if keyword == "enum":
        return f"{show(value)} is not one of {show(expected, 2 * SHOWN_CHARS)}"
    if keyword == "const":
        return f"must be {show(expected)}"
    if keyword == "pattern":
        written = without_backslashes(str(expected))
        if written is None:
            return f"{show(value)} does not match the pattern its profile sets here"
        return f"{show(value)} does not match the pattern {_cut(written)}"
    bounds = {
        "minLength": f"must be at least {_count(expected, 'character')} long",
        "maxLength": f"must be at most {_count(expected, 'character')} long",
        "minItems": f"must have at least {_count(expected, 'element')}",
        "maxItems": f"must have at most {_count(expected, 'element')}",
        "minProperties": f"must have at least {_count(expected, 'member')}",
        "maxProperties": f"must have at most {_count(expected, 'member')}",
        "minimum": f"must be at least {expected}",
        "maximum": f"must be at most {expected}",
        "exclusiveMinimum": f"must be more than {expected}",
        "exclusiveMaximum": f"must be less than {expected}",
        "multipleOf": f"must be a multiple of {expected}",
        "uniqueItems": "must not contain the same value twice",
        "anyOf": "does not match any of the allowed forms",
        "oneOf": "must match exactly one of the allowed forms",
        "not": "is not allowed here",
        "contains": "has no element of the required kind",
        "format": f"is not a valid {expected}",
    }
    return bounds.get(keyword) if isinstance(keyword, str) else None


def _count(number: Any, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _undeclared(value: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    declared = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    return [
        name
        for name in value
        if name not in declared and not any(re.search(p, name) for p in patterns)
    ]
