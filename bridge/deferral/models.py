"""What the deferral part exchanges with the token endpoint, the access-request side and its
store: resolutions, the result of a poll that may be redeemed, and the store interface."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from ..oauth.errors import ExpiredToken, InvalidRequest
from ..store.sqlite_deferrals import DeferralRecord, PingBuilder

_T = TypeVar("_T")

# The token type URI of a deferral code (revocation `token_type_hint`, metadata).
DEFERRAL_CODE_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:deferral-code"
GRANT_DEFERRED = "urn:ietf:params:oauth:grant-type:deferred"

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


class DeferralStore(Protocol):
    """What the deferral service needs from a store (SQLite: `DeferralTables`)."""

    async def deferral_create(self, record: DeferralRecord) -> None: ...

    async def deferral_find(self, code_hash: str) -> DeferralRecord | None: ...

    async def deferral_find_pending(
        self, client_id: str, dedupe_key: str, not_before: float
    ) -> DeferralRecord | None: ...

    async def deferral_poll(
        self, code_hash: str, step: Callable[[DeferralRecord], tuple[DeferralRecord, _T]]
    ) -> tuple[_T, str | None] | None: ...

    async def deferral_resolve(
        self,
        code_hash: str,
        *,
        ok: bool,
        resolution: Mapping[str, Any],
        now: float,
        ping: PingBuilder,
    ) -> bool: ...

    async def deferral_redeem(self, code_hash: str, now: float) -> bool: ...

    async def deferral_deny(self, code_hash: str) -> bool: ...

    async def deferral_cancel(self, code_hash: str, now: float) -> tuple[bool, str | None]: ...

    async def deferrals_pending_of_task(self, task_id: str) -> list[DeferralRecord]: ...

    async def deferrals_expire(
        self, now: float, *, limit: int, purge_before: float
    ) -> tuple[int, list[str]]: ...
