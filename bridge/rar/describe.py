"""Entries in words, for people (consent and approval pages): each profile's `describe`
member maps an action to a sentence template, e.g.

    "describe": {
      "read": "Read customer record {resource_id}",
      "initiate": "Pay {/instructedAmount/amount|amount} {/instructedAmount/currency}
                   to {/creditorName}"  (one line in the file)
    }

A placeholder is `{resource_id}`, `{action}` or a JSON pointer into the entry (RFC 6901),
optionally with a format: `|amount` writes a decimal amount with thousands separators
(`5000.00` → `5,000.00`). A value the entry lacks reads "(not given)". An action the
profile does not describe reads "<action> <resource type> <id>", so nothing is ever hidden.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .profiles import Profile, ProfileSet
from .translate import PlannedEvaluation

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_FORMATS = ("amount",)
_NOT_GIVEN = "(not given)"


def template_problem(template: str) -> str | None:
    """Why `template` is not a usable description template, or None."""
    if template.count("{") != template.count("}"):
        return "has an unmatched brace"
    for name in _PLACEHOLDER.findall(template):
        field, _, fmt = name.partition("|")
        if fmt and fmt not in _FORMATS:
            return f"placeholder {{{name}}}: unknown format {fmt!r} (known: amount)"
        if field not in ("resource_id", "action") and not field.startswith("/"):
            return f"placeholder {{{name}}}: must be resource_id, action or a JSON pointer"
    return None


def describe(
    profile: Profile | None,
    entry: Mapping[str, Any],
    action: str,
    resource_type: str,
    resource_id: str,
) -> str:
    """One evaluation of an entry (one action on one resource), in words."""
    template = profile.describe.get(action) if profile is not None else None
    if template is None:
        return f"{action.capitalize()} {resource_type} {resource_id}"

    def fill(match: re.Match[str]) -> str:
        field, _, fmt = match.group(1).partition("|")
        if field == "resource_id":
            value: Any = resource_id
        elif field == "action":
            value = action
        else:
            value = _pointer(entry, field)
        if value is None:
            return _NOT_GIVEN
        text = value if isinstance(value, str) else str(value)
        return _amount(text) if fmt == "amount" else text

    return _PLACEHOLDER.sub(fill, template)


def describe_planned(
    profiles: ProfileSet, details: Sequence[Mapping[str, Any]], item: PlannedEvaluation
) -> str:
    """A planned evaluation in words: its entry's, or, for a scope (which names no one
    resource), its profile's words for any resource, and the scope; under the token
    issuance mapping a gate or a scope names its target."""
    resource = item.request.resource
    if item.source == "gate":
        # The token issuance mapping's gate: whether a token may be had there at all.
        return f"Get a token for {item.target}"
    if item.source == "scope" and item.target is not None:
        # A scope of the token issuance mapping: verbatim, at one target.
        return f"Use scope {item.scope} at {item.target}"
    if item.source == "scope":
        mapping = profiles.scope(item.scope or "")
        profile = profiles.get(mapping.profile_type) if mapping else None
        words = describe(profile, {}, item.action, resource.type, "(any)")
        return f"{words}, by scope {item.scope}"
    entry = details[item.entry_index or 0]
    return describe(profiles.get(entry["type"]), entry, item.action, resource.type, resource.id)


def _pointer(document: Any, pointer: str) -> Any:
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(document, Mapping) and token in document:
            document = document[token]
        elif isinstance(document, list) and token.isdigit() and int(token) < len(document):
            document = document[int(token)]
        else:
            return None
    return document if isinstance(document, str | int | float) else None


def _amount(text: str) -> str:
    whole, dot, fraction = text.partition(".")
    if not whole.isdigit():
        return text
    return f"{int(whole):,}" + (dot + fraction if dot else "")
