"""What a poll of a deferral is answered, beside a token: the sender constraint of the code
(dtr.md §9) and the OAuth error of each verdict of `throttle.poll_step` (dtr.md §4.5)."""

from __future__ import annotations

from ..errors import AccessDenied, InvalidGrant, InvalidRequest
from ..oauth.errors import InvalidDPoPProof
from ..store.contract.deferrals import DeferralRecord
from .errors import AuthorizationPending, SlowDown
from .throttle import Verdict


def check_binding(record: DeferralRecord, jkt: str | None, *, polling: bool) -> None:
    """dtr.md §9: a DPoP-bound code is used only with a proof from its key. A poll with a
    proof for a code that is not bound is refused too: the token would be bound to a key
    the access request was not decided for (the key is part of the evaluated context)."""
    if record.jkt is not None:
        if jkt is None:
            raise InvalidDPoPProof("the deferral code is DPoP-bound: send a proof with its key")
        if jkt != record.jkt:
            raise InvalidDPoPProof("the DPoP proof is not signed with the deferral code's key")
    elif jkt is not None and polling:
        raise InvalidDPoPProof("the deferral code is not bound to a DPoP key")


def error_for(verdict: Verdict, record: DeferralRecord) -> Exception:
    if verdict is Verdict.PENDING:
        return AuthorizationPending()  # neither the code nor the interval is repeated
    if verdict is Verdict.SLOW_DOWN:
        return SlowDown("polling too fast: add 5 seconds to the interval")
    if verdict is Verdict.TOO_FAST:
        return InvalidRequest("polled too fast too often: stop using this deferral code")
    if verdict is Verdict.DENIED:
        return AccessDenied("the request was not approved")
    if verdict is Verdict.CANCELLED:
        return AccessDenied("the deferral was cancelled")
    if verdict is Verdict.REDEEMED:
        return InvalidGrant("the deferral code was already redeemed")
    raise AssertionError(f"no error for {verdict} of a {record.status} deferral")
