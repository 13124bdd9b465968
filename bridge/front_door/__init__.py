"""The front door: where a person meets the bridge. `/authorize` and `/par` (RFC 6749 §4.1
as OAuth 2.1 and RFC 9700 profile it, RFC 9126, RFC 7636, RFC 9207), sign-in, sessions,
consent, and the `authorization_code` grant that redeems what consent produced.

Sign-in methods plug in through one seam, `sessions.establish_session(request, person)`:
local accounts (`local_accounts`) are one method; an upstream OpenID Provider is another.
"""
