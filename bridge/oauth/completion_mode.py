"""DTR §5 `completion_mode`: a space-separated list in which only `deferred` means anything
today; unknown values are ignored, never an error. Read the same way on a token request,
on an authorization request (a hint, §5.2) and at the pushed authorization endpoint."""

from __future__ import annotations

DEFERRED = "deferred"


def defers(value: str | None) -> bool:
    """Whether a `completion_mode` value opts in to a deferred response."""
    return DEFERRED in set((value or "").split())
