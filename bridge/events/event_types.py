"""The event types the bridge receives and sends, by their URIs (the keys of a SET's `events`
claim, RFC 8417 §2.2).

CAEP 1.0's types are the OpenID Shared Signals working group's; the SSF ones are SSF 1.0's
own (§8.1.4, §8.1.5); the bridge's own types, under `urn:authzen-bridge:event-type:`, carry
what ARAP's access requests go through (docs/events.md lists their members).
"""

from __future__ import annotations

CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
SESSION_REVOKED = CAEP + "session-revoked"
CREDENTIAL_CHANGE = CAEP + "credential-change"
TOKEN_CLAIMS_CHANGE = CAEP + "token-claims-change"
ASSURANCE_LEVEL_CHANGE = CAEP + "assurance-level-change"

SSF = "https://schemas.openid.net/secevent/ssf/event-type/"
VERIFICATION = SSF + "verification"
STREAM_UPDATED = SSF + "stream-updated"

OWN = "urn:authzen-bridge:event-type:"
# Received: another system decides an access request, or opens one.
ACCESS_REQUEST_DECISION = OWN + "access-request-decision"
ACCESS_REQUEST_OPEN = OWN + "access-request-open"
# Sent: what happens to access requests and their approvals.
ACCESS_REQUEST_FILED = OWN + "access-request-filed"
ACCESS_REQUEST_APPROVED = OWN + "access-request-approved"
ACCESS_REQUEST_DENIED = OWN + "access-request-denied"
ACCESS_REQUEST_EXPIRED = OWN + "access-request-expired"
ACCESS_REQUEST_CANCELLED = OWN + "access-request-cancelled"
APPROVAL_REVOKED = OWN + "approval-revoked"

# What any transmitter may send on a stream, asked for or not (SSF §8.1.4, §8.1.5).
ALWAYS_SENT = (VERIFICATION, STREAM_UPDATED)

# What a received event of each type does (`receiving.Receiver`).
REVOKING = frozenset({SESSION_REVOKED, CREDENTIAL_CHANGE})
REEVALUATING = frozenset({TOKEN_CLAIMS_CHANGE, ASSURANCE_LEVEL_CHANGE})
RECEIVED = REVOKING | REEVALUATING | {ACCESS_REQUEST_DECISION, ACCESS_REQUEST_OPEN, *ALWAYS_SENT}

# What the bridge's transmitter offers on a stream (`events_supported`); verification and
# stream-updated events go on every stream, asked for or not (SSF §8.1.4, §8.1.5).
SENT = (
    ACCESS_REQUEST_FILED,
    ACCESS_REQUEST_APPROVED,
    ACCESS_REQUEST_DENIED,
    ACCESS_REQUEST_EXPIRED,
    ACCESS_REQUEST_CANCELLED,
    APPROVAL_REVOKED,
    SESSION_REVOKED,
    TOKEN_CLAIMS_CHANGE,
)
