"""The AuthZEN `resource.id` named by one RFC 9396 `locations` value (AROP §2).

AROP maps `https://crm.example/customers/c-4815` to the id `c-4815`: the last path segment.
The bridge pins down the cases the profile leaves open, so that a policy author can predict
the id from the URL: the last *non-empty* segment (a trailing `/` changes nothing), percent-
decoded; a value that is not an absolute URL with a hierarchical path (a URN, a bare host,
a relative reference) is used whole.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit


class UndecodableSegment(ValueError):
    """The percent-decoded segment is not UTF-8, so it names no resource reliably."""


def resource_id_from_location(location: str) -> str:
    try:
        parts = urlsplit(location)
    except ValueError:  # e.g. an unclosed IPv6 literal: not a URL, so the value as it is
        return location
    if not parts.scheme or not parts.path.startswith("/"):
        return location
    segments = [segment for segment in parts.path.split("/") if segment]
    if not segments:
        return location
    try:
        # Strict decoding: "%FF" and "%FE" must not both become U+FFFD, one id for two URLs.
        return unquote(segments[-1], errors="strict")
    except UnicodeDecodeError:
        raise UndecodableSegment("the last path segment is not UTF-8 once decoded") from None
