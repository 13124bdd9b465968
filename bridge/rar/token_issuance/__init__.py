"""The OpenID AuthZEN token issuance profile (openid/authzen
`profiles/authzen-oauth/authzen-oauth-token-issuance-1_0.md`, with its token exchange
binding `authzen-oauth-token-exchange-1_0.md`), as far as it is RAR and AuthZEN and not
OAuth: the gate action names (`names`), the tuples one token request becomes (`tuples`),
what denials leave of it (`narrowing`) and the check of the `authorization_details` a PDP
sends back (`returned_details`).

The OAuth side (which grant, which errors, the token) is `oauth.issuance_mapping`.
"""

from .names import (
    GATE_PREFIX,
    gate_action,
    gate_token_type,
    grant_short_name,
    token_type_short_name,
)
from .narrowing import Narrowed, at_target, narrow, targets_of
from .returned_details import check_returned_details
from .tuples import AUDIENCE, IssuanceQuestion, TooManyEvaluations, form_batch

__all__ = [
    "AUDIENCE",
    "GATE_PREFIX",
    "IssuanceQuestion",
    "Narrowed",
    "TooManyEvaluations",
    "at_target",
    "check_returned_details",
    "form_batch",
    "gate_action",
    "gate_token_type",
    "grant_short_name",
    "narrow",
    "targets_of",
    "token_type_short_name",
]
