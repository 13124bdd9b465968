"""The grammars of values the protocols define, checked where such a value enters: URIs
(RFC 3986), scope tokens (RFC 6749 §3.3), approval template names. A value outside its
grammar is refused by the caller with its protocol's error; none of these admits a control
character, so a NUL or a line break never reaches a token, a log line or a header.
"""

from __future__ import annotations

import re

# RFC 3986 §3: scheme ":" then only unreserved, reserved and "%" characters (their
# percent-encodings checked separately). An IRI must be percent-encoded first.
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
# `@approval("...")` names: what a person reads on an approval page and what notification
# routing is keyed by; letters, digits and `_ - . :` only.
_TEMPLATE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")


def is_uri(value: str) -> bool:
    """An absolute URI (RFC 3986 §4.3 without the fragment restriction)."""
    return _URI.fullmatch(value) is not None and _BAD_PERCENT.search(value) is None


def is_scope_token(value: str) -> bool:
    return _SCOPE_TOKEN.fullmatch(value) is not None


def is_template_name(value: str) -> bool:
    return _TEMPLATE.fullmatch(value) is not None


def has_control_character(value: str) -> bool:
    """C0 controls and DEL: never part of an identifier the bridge accepts."""
    return _CONTROLS.search(value) is not None
