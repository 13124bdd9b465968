"""PKCE on the first poll of a deferral made at the authorization endpoint (DTR PR #47).

No code was issued, so the client proves it started the authorization request by sending its
`code_verifier` with its first poll, and never again: missing or wrong on the first poll →
`invalid_grant`, and the deferral ends (denied; its access request is cancelled); sent on a
later poll, or on a deferral made at the token endpoint → `invalid_request`. The first poll
is the one before which the deferral was never polled (`last_poll_at`).
"""

from __future__ import annotations

from ..errors import InvalidGrant, InvalidRequest
from ..front_door.pkce import check_verifier
from ..store.contract.deferrals import LIVE, DeferralRecord

# The snapshot member holding the challenge of the authorization request.
PKCE_MEMBER = "pkce"


def challenge_of(record: DeferralRecord) -> str | None:
    pkce = record.snapshot.get(PKCE_MEMBER)
    challenge = pkce.get("code_challenge") if isinstance(pkce, dict) else None
    return challenge if isinstance(challenge, str) else None


def check_first_poll(record: DeferralRecord, verifier: str | None) -> bool:
    """Whether this poll proves PKCE; raises `invalid_request` for a verifier out of place.
    False: the first poll's verifier is missing or wrong (the caller ends the deferral and
    answers `invalid_grant`)."""
    challenge = challenge_of(record)
    if challenge is None:
        if verifier is not None:
            raise InvalidRequest("code_verifier goes only with a deferral code from /authorize")
        return True
    if record.last_poll_at is not None or record.status not in LIVE:
        if verifier is not None:
            raise InvalidRequest("code_verifier is sent on the first poll only")
        return True
    if verifier is None:
        return False
    try:
        check_verifier(verifier, challenge)
    except InvalidGrant:
        return False
    return True


class PKCEFailed(InvalidGrant):
    """The first poll did not prove PKCE: the deferral has ended; `task_id` is its access
    request, which nobody waits on any more."""

    def __init__(self, task_id: str | None) -> None:
        super().__init__("the first poll needs the code_verifier of the authorization request")
        self.task_id = task_id
