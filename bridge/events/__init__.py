"""Shared Signals (OpenID SSF 1.0, CAEP 1.0): the bridge as a receiver of Security Event Tokens
(RFC 8417) that other systems push (RFC 8935) or that it polls (RFC 8936), acting on them
(a subject's revoked session ends its deferrals, approvals, refresh tokens and access tokens;
changed facts re-evaluate its requests and approvals; another system decides or opens an
access request), and as a transmitter of its own events (the streams receivers manage,
push and poll delivery), with continuous evaluation of access tokens at introspection.

The guide is docs/events.md; the assembly is `assembly.Events`.
"""
