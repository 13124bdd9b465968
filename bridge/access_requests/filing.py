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

from .service import AccessRequestService, DeniedEvaluation, oauth_requester


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

    async def file(self, denied: Sequence[DeniedEvaluation], client_id: str) -> FiledRequest: ...

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
        task = await self._service.submit_internal(denied, client_id=client_id)
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
