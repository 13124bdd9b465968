"""Filing access requests for denied token requests: with the bridge's own service, or with
the service a remote PDP's denials point at (`remote_backend.RemoteAccessRequests`).

The deferral part only needs three things of either: file a request for the denied
evaluations, read how it ended (status and per-item approvals), cancel it — and, for
housekeeping, drop one that nobody waits on any more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..authzen.errors import PDPRequestRejected
from .forms import FormInvalid
from .service import AccessRequestService, DeniedEvaluation, oauth_requester


class FormInputRequired(PDPRequestRejected):
    """The denials are requestable only with a request form's fields (ARAP's
    `request_schema_url`, the Catalog profile) that a token request cannot give: nothing is
    filed. The deferred response then answers as for a plain denial; elsewhere it is a
    `PDPError`, so nothing is ever deferred on a request that was never filed."""


@dataclass(frozen=True)
class FiledRequest:
    id: str  # the task id a deferral waits on
    expires_at: float
    status: str = "pending"  # a request can end at filing (an emergency approved at once)


@dataclass(frozen=True)
class RequestOutcome:
    status: str  # ARAP task status; only "approved" lets the token through
    approvals: list[dict[str, Any]] = field(default_factory=list)  # one per item, in order


class AccessRequestFiling(Protocol):
    # Whether the approvals of `outcome` are this bridge's own (in its store), so that the
    # tokens issued under them can be tied to them for revocation.
    local_approvals: bool

    async def file(self, denied: Sequence[DeniedEvaluation], client_id: str) -> FiledRequest:
        """The access request filed for `denied`; raises `FormInputRequired` when the
        denials need a request form's fields, another `PDPError` when it cannot be filed."""
        ...

    async def outcome(self, task_id: str) -> RequestOutcome: ...

    async def cancel(self, task_id: str, client_id: str) -> None: ...

    async def abandon(self, task_id: str) -> None:
        """Cancel whoever filed it: no deferral waits on it any more."""
        ...


class EmbeddedFiling:
    """The bridge's own service (embedded PDP): an in-process call, no HTTP."""

    local_approvals = True

    def __init__(self, service: AccessRequestService) -> None:
        self._service = service

    async def file(self, denied: Sequence[DeniedEvaluation], client_id: str) -> FiledRequest:
        try:
            task = await self._service.submit_internal(denied, client_id=client_id)
        except FormInvalid as exc:
            raise FormInputRequired(exc.detail, exc.status) from None
        return FiledRequest(task.id, task.expires_at, task.status)

    async def outcome(self, task_id: str) -> RequestOutcome:
        task = await self._service.task(task_id)
        approvals = [dict((item.result or {}).get("approval") or {}) for item in task.items]
        return RequestOutcome(task.status, approvals)

    async def cancel(self, task_id: str, client_id: str) -> None:
        await self._service.cancel(task_id, oauth_requester(client_id))

    async def abandon(self, task_id: str) -> None:
        task = await self._service.task(task_id)
        await self._service.cancel(task_id, task.record.requester)
