"""Deferred Token Response (shared/specs/dtr.md): deferral codes, the polling grant and its
throttling, expiry, cancellation and ping notifications. Client view: docs/deferred-tokens.md."""

from .codes import DeferralKeys, new_code
from .models import (
    DEFERRAL_CODE_TOKEN_TYPE,
    GRANT_DEFERRED,
    DeferralExpired,
    DeferralStore,
    PollResult,
    Resolution,
    check_notification_token,
)
from .ping import PING_KIND
from .service import Decide, DeferralService

__all__ = [
    "DEFERRAL_CODE_TOKEN_TYPE",
    "GRANT_DEFERRED",
    "PING_KIND",
    "Decide",
    "DeferralExpired",
    "DeferralKeys",
    "DeferralService",
    "DeferralStore",
    "PollResult",
    "Resolution",
    "check_notification_token",
    "new_code",
]
