"""What the deferral part exchanges with the token endpoint and the access-request side:
resolutions, and the result of a poll that may be redeemed."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidRequest
from ..store.contract.deferrals import DeferralRecord, DeferralStore
from .errors import ExpiredToken

# The token type URI of a deferral code (revocation `token_type_hint`, metadata).
DEFERRAL_CODE_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:deferral-code"
GRANT_DEFERRED = "urn:ietf:params:oauth:grant-type:deferred"

# Snapshot members the deferral part itself reads (the rest is the originating request's):
# - HANDLE_MEMBER: the name the client knows the code by, which its pings carry and which
#   only the matching polling grant redeems (absent: DTR's `deferral_code`; CIBA's
#   `auth_req_id`, `bridge.ciba`);
# - CONSENT_MEMBER: `{"by": <name>, ...}`, someone besides the approvers who must agree
#   before the deferral is settled (`DeferralService.require_consent`).
HANDLE_MEMBER = "handle"
DEFERRAL_CODE_HANDLE = "deferral_code"
CONSENT_MEMBER = "consent"

# `consent(record)`: whether the one a deferral also needs has agreed to it. True: yes;
# False: she refused (the deferral is denied); None: not yet (it stays pending).
Consent = Callable[[DeferralRecord], Awaitable[bool | None]]


def handle_of(record: DeferralRecord) -> str:
    """The name the client knows `record`'s code by."""
    handle = record.snapshot.get(HANDLE_MEMBER)
    return handle if isinstance(handle, str) else DEFERRAL_CODE_HANDLE


# RFC 6750 §2.1 b64token: what can follow `Bearer ` in the ping's Authorization header.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
MAX_NOTIFICATION_TOKEN_LENGTH = 512


@dataclass(frozen=True)
class Resolution:
    """The outcome of re-evaluating one deferral's snapshot once its access request ended."""

    ok: bool
    approved_until: float | None = None  # epoch seconds; bounds the token's lifetime
    approvals: list[dict[str, Any]] = field(default_factory=list)  # per-item approvals

    def as_json(self) -> dict[str, Any]:
        return {"approved_until": self.approved_until, "approvals": self.approvals}


@dataclass(frozen=True)
class PollResult:
    """A poll that found the deferral approved: re-check, then `DeferralService.redeem`."""

    record: DeferralRecord

    @property
    def snapshot(self) -> dict[str, Any]:
        return self.record.snapshot

    @property
    def approved_until(self) -> float | None:
        resolution = self.record.resolution or {}
        value = resolution.get("approved_until")
        return float(value) if isinstance(value, int | float) else None

    @property
    def approvals(self) -> list[dict[str, Any]]:
        resolution = self.record.resolution or {}
        approvals = resolution.get("approvals")
        return list(approvals) if isinstance(approvals, list) else []

    @property
    def task_id(self) -> str | None:
        return self.record.task_id


class DeferralExpired(ExpiredToken):
    """`expired_token`; `task_id` is set when this poll ended the deferral and no other live
    deferral waits on that access request, which the caller then cancels (AROP §7)."""

    def __init__(self, task_id: str | None = None) -> None:
        super().__init__("the deferral code has expired")
        self.task_id = task_id


def check_notification_token(value: str | None) -> None:
    """`client_notification_token` must fit a Bearer header (RFC 6750 §2.1). Call it with
    the other request checks, before anything is submitted. Its entropy is the client's
    business (shared/specs/dtr.md §2)."""
    if value is None:
        return
    if len(value) > MAX_NOTIFICATION_TOKEN_LENGTH or not _B64TOKEN.fullmatch(value):
        raise InvalidRequest(
            "client_notification_token must be a bearer token value (RFC 6750 b64token) "
            f"of at most {MAX_NOTIFICATION_TOKEN_LENGTH} characters"
        )


__all__ = [
    "CONSENT_MEMBER",
    "DEFERRAL_CODE_HANDLE",
    "HANDLE_MEMBER",
    "Consent",
    "DeferralExpired",
    "DeferralStore",
    "PollResult",
    "Resolution",
    "check_notification_token",
    "handle_of",
]
