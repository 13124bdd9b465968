"""AROP's CIBA binding (OpenID CIBA Core 1.0): a client asks, at the backchannel
authentication endpoint, for a token that acts for a user; she approves on her own device
(a page of the bridge, after signing in); where policy's denial is requestable, the approvers
it names approve as well. The client polls with the CIBA grant, or is pinged first.

The wait is a deferral of `bridge.deferral` (the `auth_req_id` is its code): one polling
mechanism for the deferred grant and the CIBA grant. Client view: docs/deferred-tokens.md,
"CIBA".
"""
