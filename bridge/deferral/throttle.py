"""What one poll of a known, correctly bound deferral code means: a pure function of the row
and the time, applied by the store inside the poll's transaction.

The order is shared/specs/dtr.md §4.2 with the bridge's reading of expiry (§12): a redeemed
code stays `invalid_grant` and a denied or cancelled one `access_denied` for good; otherwise
the end of the code's life answers `expired_token`, even for an approved code not yet
redeemed. Throttling (§4.3) applies only while pending:

- the first poll is never too fast (there is no previous poll);
- `required_gap` starts at `interval`; a poll earlier than `required_gap - tolerance` after
  the previous poll gets `slow_down` and raises `required_gap` by `slow_down_seconds`;
- `last_poll_at` moves on every poll, so a client that keeps hammering stays too fast;
- after more than `max_slow_downs` consecutive `slow_down`s the answer is `invalid_request`
  (one poll at the required pace resets the count);
- a client polling exactly at the advertised interval is never slowed down.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from ..store.contract.deferrals import (
    CANCELLED,
    DENIED,
    EXPIRED,
    REDEEMED,
    RESOLVED_OK,
    DeferralRecord,
)


class Verdict(enum.Enum):
    PENDING = "authorization_pending"
    SLOW_DOWN = "slow_down"
    TOO_FAST = "invalid_request"  # persistent over-polling
    READY = "resolved_ok"  # approved: re-check, then redeem
    DENIED = "denied"
    CANCELLED = "cancelled"
    REDEEMED = "redeemed"
    EXPIRED = "expired"


@dataclass(frozen=True)
class PollRules:
    slow_down_seconds: float
    tolerance_seconds: float
    max_slow_downs: int


_FINAL_VERDICTS = {
    REDEEMED: Verdict.REDEEMED,
    DENIED: Verdict.DENIED,
    CANCELLED: Verdict.CANCELLED,
    EXPIRED: Verdict.EXPIRED,
}


def poll_step(
    record: DeferralRecord, now: float, rules: PollRules
) -> tuple[DeferralRecord, Verdict]:
    """(the row after this poll, what to answer)."""
    polled = replace(record, last_poll_at=now)
    final = _FINAL_VERDICTS.get(record.status)
    if final is not None:
        return polled, final
    if now >= record.expires_at:
        return replace(polled, status=EXPIRED), Verdict.EXPIRED
    if record.status == RESOLVED_OK:
        return polled, Verdict.READY  # an answer is ready: never throttled
    previous = record.last_poll_at
    if previous is None or now - previous >= record.required_gap - rules.tolerance_seconds:
        return replace(polled, slow_down_count=0), Verdict.PENDING
    count = record.slow_down_count + 1
    if count > rules.max_slow_downs:
        return replace(polled, slow_down_count=count), Verdict.TOO_FAST
    gap = record.required_gap + rules.slow_down_seconds
    return replace(polled, slow_down_count=count, required_gap=gap), Verdict.SLOW_DOWN
