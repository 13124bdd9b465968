"""The errors a SET Recipient answers with (RFC 8935 §2.3 and §2.4; the IANA "Security Event
Token Error Codes" registry, which SSF 1.0 §8.1.4.1 adds `invalid_state` to).

A refused push is answered HTTP 400 with `{"err": <code>, "description": <text>}`
(`application/json`); a refused polled SET is acknowledged the same way in the next poll's
`setErrs` (RFC 8936 §2.4.3). The descriptions are the bridge's own words: they never echo
the SET.
"""

from __future__ import annotations

from typing import Any


class SETError(Exception):
    """A SET the bridge does not accept."""

    err = "invalid_request"
    status = 400

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description

    def body(self) -> dict[str, Any]:
        return {"err": self.err, "description": self.description}


class InvalidRequest(SETError):
    """ "The request body cannot be parsed as a SET, or the Event Payload within the SET does
    not conform to the event's definition." The bridge also answers so for a SET it received
    before (its `jti`), one too old, and a request that is not a push at all."""

    err = "invalid_request"


class AlreadyReceived(InvalidRequest):
    """A SET whose `jti` was received before (by this or another replica): a replay, or a
    transmitter sending again what it did not learn arrived."""


class InvalidKey(SETError):
    """ "One or more keys used to encrypt or sign the SET is invalid or otherwise unacceptable
    to the SET Recipient": the signature does not verify with the transmitter's keys, or is
    made with an algorithm it may not use."""

    err = "invalid_key"


class InvalidIssuer(SETError):
    """ "The SET Issuer is invalid for the SET Recipient": no configured transmitter."""

    err = "invalid_issuer"


class InvalidAudience(SETError):
    """ "The SET Audience does not correspond to the SET Recipient.\""""

    err = "invalid_audience"


class AuthenticationFailed(SETError):
    """ "The SET Recipient could not authenticate the SET Transmitter": its keys could not
    be had."""

    err = "authentication_failed"


class AccessDenied(SETError):
    """ "The SET Transmitter is not authorized to transmit the SET to the SET Recipient": an
    event type it may not send, or a decision the policies do not let it take."""

    err = "access_denied"


class InvalidState(SETError):
    """SSF §8.1.4.1: a verification event whose `state` is not the one expected."""

    err = "invalid_state"
