"""The errors OpenID CIBA Core 1.0 names for the backchannel authentication endpoint (§13),
with the spec's wording. The others it uses are RFC 6749's (`bridge.errors`:
`invalid_request`, `invalid_scope`, `invalid_client`, `unauthorized_client`,
`access_denied`), and at the token endpoint the CIBA grant answers as the deferred grant does
(`authorization_pending`, `slow_down`, `expired_token`, `access_denied`: `deferral.errors`;
`invalid_grant` for an unknown or spent `auth_req_id`, §11).

Not raised here, because the bridge does not take what they are about: `expired_login_hint_token`
(only `login_hint` is accepted), `missing_user_code` and `invalid_user_code`
(`backchannel_user_code_parameter_supported` is false).
"""

from __future__ import annotations

from ..errors import OAuthError


class UnknownUserId(OAuthError):
    """“The OpenID Provider is not able to identify which end-user the Client wishes to be
    authenticated by means of the hint provided in the request (login_hint_token,
    id_token_hint, or login_hint).”"""

    error = "unknown_user_id"


class InvalidBindingMessage(OAuthError):
    """“The binding message is invalid or unacceptable for use in the context of the given
    request.”"""

    error = "invalid_binding_message"
