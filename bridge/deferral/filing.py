"""Filing the access request of a deferred request and storing its deferral: what every
deferral shares, whether a token request opted in (`extension.DeferredResponses`), a
person's consent did (`direct.DirectDeferral`), or a CIBA request waits for its user
(`bridge.ciba`, which may need no access request at all).

The snapshot keeps what is needed to finish the original request later (the grant type, the
principal, what was asked, the planned evaluations and which were denied), so the token is
decided again, at redemption, on exactly that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..access_requests.filing import AccessRequestFiling
from ..access_requests.service import DeniedEvaluation
from ..authzen.models import Decision
from ..oauth.clients import Client
from ..oauth.grants.base import Principal
from ..oauth.requested_access import RequestedAccess
from ..rar.describe import describe_planned
from ..rar.profiles import ProfileSet
from ..rar.translate import PlannedEvaluation
from .service import DeferralService


def asked_of(grant_type: str, principal: Principal, access: RequestedAccess) -> dict[str, Any]:
    """The request part of a snapshot: what identifies the request (AROP §3)."""
    return {
        "grant_type": grant_type,
        "principal": {
            "subject": principal.subject.model_dump(exclude_none=True),
            "token_sub": principal.token_sub,
            "act": principal.act,
        },
        "details": access.details,
        "scope": access.scope,
        "resource": access.resource,
    }


async def file_and_defer(
    deferrals: DeferralService,
    filing: AccessRequestFiling,
    profiles: ProfileSet,
    *,
    client: Client,
    jkt: str | None,
    asked: Mapping[str, Any],
    planned: Sequence[PlannedEvaluation],
    decisions: Sequence[Decision],
    notification_token: str | None = None,
    dedupe_key: str | None = None,
    extra: Mapping[str, Any] | None = None,
    ping: bool = True,
    notification_endpoint: str | None = None,
    max_lifetime: float | None = None,
) -> dict[str, Any]:
    """File one access request for everything denied (each item in its profile's words;
    nothing denied: none), store the deferral, and return the deferred response's body
    (`DeferralService.defer`, which takes the last three). `extra` goes into the snapshot (a
    direct deferral's PKCE challenge, a CIBA request's consent)."""
    denied = [n for n, decision in enumerate(decisions) if not decision.decision]
    details = list(asked.get("details") or [])
    described = [
        DeniedEvaluation(
            planned[n].request,
            decisions[n].context or {},
            describe_planned(profiles, details, planned[n]),
        )
        for n in denied
    ]
    task = await filing.file(described, client.client_id) if described else None
    snapshot = {
        **asked,
        **(extra or {}),
        "evaluations": [p.request.model_dump(exclude_none=True) for p in planned],
        "denied": denied,
    }
    body = await deferrals.defer(
        client,
        jkt,
        snapshot,
        task.id if task else None,
        task.expires_at if task else None,
        notification_token,
        dedupe_key=dedupe_key,
        ping=ping,
        notification_endpoint=notification_endpoint,
        max_lifetime=max_lifetime,
    )
    if task is not None and task.status != "pending":
        # Ended at filing (an emergency policy approved at once): its `task_terminal` may
        # have run before this deferral existed, so settle the deferral again.
        await deferrals.settle_task_later(task.id)
    return body
