"""`RemoteAccessRequests`: the token endpoint's access requests when a remote PDP decides
and its denials point at its own access request service (ARAP §6 to §12, AROP §4).

- `file` submits one request (a bundle for several denials) with the remote PDP's
  credentials, an `Idempotency-Key` stored before the first attempt and reused on retries,
  and a callback to `<public_url>/access/v1/callbacks` with a fresh random `state` (stored
  hashed). Deferrals wait on the row's local `rtask_` id: no remote handle reaches a client.
  A service on another origin than the PDP's gets only denials with a `binding_token`; a
  denial that points at a request form is filed only when the submission fills it
  (`remote_forms`).
- `outcome` answers from the stored row alone: a client's poll is never a network call.
- `refresh_due` (housekeeping) reads the status of due pending rows, backing off
  exponentially with jitter (a few seconds up to a minute) and obeying `Retry-After`; an
  unreadable status leaves the row pending (fail closed). A terminal status is stored with
  its `task_terminal` outbox row in one transaction, and the deferral flow settles.
- A callback is only a hint: its result is never believed; the row its `state` names gets
  one authenticated status read. When the remote PDP's metadata has a `jwks_uri`, the
  callback must carry the signed JWT a bridge-like service sends (`CallbackTokens`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..authzen.errors import PDPError
from ..authzen.models import JSONObject
from ..jose import strict_json
from ..jose.jwks import JWKSError
from ..settings import RemotePDPSettings
from ..store.contract.remote_access_requests import (
    PENDING,
    SUBMIT_FAILED,
    SUBMITTING,
    RemoteTaskRecord,
    RemoteTaskStore,
)
from .filing import FiledRequest, RequestOutcome
from .lifecycle import TASK_TERMINAL
from .problems import AccessRequestProblem, BadRequest, Unauthorized, status_problem
from .remote_client import (
    AccessRequestRefused,
    AccessRequestUnavailable,
    ARSClient,
    CallbackTokens,
    TaskAnswer,
    TrustedOrigins,
    UnusableAnswer,
    item_approvals,
    read_callback,
    read_task_answer,
    retry_after,
    same_origin,
    submission,
)
from .remote_forms import RemoteForms
from .responses import problem_response
from .service import DeniedEvaluation
from .tasks import APPROVED, CANCELLED, EXPIRED, FAILED

log = logging.getLogger("bridge.access_requests.remote")

CALLBACK_PATH = "/access/v1/callbacks"
MAX_CALLBACK_BYTES = 65_536
LEASE_SECONDS = 30.0  # a claimed row is due again this long after a sweeper died on it
MAX_RETRY_AFTER = 3_600.0
CALLBACK_GAP_SECONDS = 1.0  # callbacks closer than this to a read cost no extra read
TERMINAL_GRACE_SECONDS = 2.0  # a 201 outcome is announced once the deferral surely exists
RETAIN_SECONDS = 86_400.0


# Local ids of the access requests filed here (never a remote handle: clients see none).
LOCAL_ID_PREFIX = "rtask_"


class MetadataSource(Protocol):
    """The remote PDP's metadata document (`RemotePDP` is one), cached by its owner."""

    async def metadata(self) -> JSONObject: ...


class RemoteAccessRequests:
    # The remote service's approvals: revoked there, never in this bridge's store.
    local_approvals = False

    def __init__(
        self,
        store: RemoteTaskStore,
        pdp: MetadataSource,
        settings: RemotePDPSettings,
        http: httpx.AsyncClient,
        *,
        public_url: str,
        allow_private: bool = False,
        request_lifetime_seconds: float = 10_800.0,
        first_check_seconds: float = 2.0,
        max_check_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`pdp` gives the metadata (`access_request_endpoint`, `jwks_uri`), `settings` the
        credentials and retries; `request_lifetime_seconds`: how long a task without
        `expires_at` is polled."""
        self._store = store
        self._pdp = pdp
        self._client = ARSClient(settings, http)
        self._forms = RemoteForms(self._client)
        self._pdp_url = str(settings.url)
        self.callback_endpoint = public_url.rstrip("/") + CALLBACK_PATH
        self._tokens = CallbackTokens(self.callback_endpoint, http)
        self._allow_private = allow_private
        self._lifetime = request_lifetime_seconds
        self._first_check = first_check_seconds
        self._max_check = max_check_seconds
        self._clock = clock

    # -- AccessRequestBackend ----------------------------------------------------------

    async def file(self, denied: Sequence[DeniedEvaluation], client_id: str) -> FiledRequest:
        """Raises a `PDPError` when no task came of it: `AccessRequestRefused` (refused, or
        not submittable), `AccessRequestUnavailable`, `UnusableAnswer`."""
        if not denied:
            raise AccessRequestRefused("nothing was denied", 400)
        metadata = await self._pdp.metadata()
        origins = self._origins(metadata)
        default = metadata.get("access_request_endpoint")
        requests = [d.decision_context.get("access_request") for d in denied]
        if not all(isinstance(r, dict) for r in requests):
            raise AccessRequestRefused("a denial is not requestable", 400)
        endpoints = {r.get("endpoint", default) for r in requests if isinstance(r, dict)}
        endpoint = endpoints.pop() if len(endpoints) == 1 else None
        if not isinstance(endpoint, str) or not origins.allows(endpoint):
            raise AccessRequestRefused("the denials name no single trusted endpoint", 400)
        state = secrets.token_urlsafe(32)
        body = submission(
            denied,
            client_id,
            {"endpoint": self.callback_endpoint, "state": state},
            # Another origin's service cannot resolve the PDP's evaluation ids (split ARAP).
            binding_token_required=not same_origin(endpoint, self._pdp_url),
        )
        await self._forms.check([r for r in requests if isinstance(r, dict)], body, origins)
        now = self._clock()
        record = RemoteTaskRecord(
            id=LOCAL_ID_PREFIX + secrets.token_urlsafe(24),
            client_id=client_id,
            endpoint=endpoint,
            idempotency_key=secrets.token_urlsafe(24),
            state_hash=_sha256_hex(state),
            item_count=len(denied),
            status=SUBMITTING,
            created_at=now,
            updated_at=now,
            expires_at=now + self._lifetime,
        )
        await self._store.remote_task_insert(record)  # the key exists before any attempt
        try:
            answer = await self._submit(record, body, origins)
        except PDPError as exc:
            failed = {"status": SUBMIT_FAILED, "updated_at": self._clock(), "last_error": str(exc)}
            await self._store.remote_task_update(record.id, [SUBMITTING], failed)
            raise
        now = self._clock()
        expires_at = answer.expires_at or record.expires_at
        values: dict[str, Any] = {
            "remote_id": answer.id,
            "status_endpoint": answer.status_endpoint,
            "cancel_endpoint": _trusted(answer.cancel_endpoint, origins),
            "expires_at": expires_at,
        }
        if answer.status == PENDING:
            values.update(status=PENDING, last_json=answer.body, updated_at=now)
            values["next_check_at"] = min(now + self._backoff(0), expires_at)
            await self._store.remote_task_update(record.id, [SUBMITTING], values)
        else:  # a 201 with the outcome already
            await self._finish(record, answer.status, answer.body, [SUBMITTING], values)
        return FiledRequest(record.id, expires_at)

    async def outcome(self, task_id: str) -> RequestOutcome:
        """From the stored row only. "approved" needs every item approved with a usable
        `reevaluate` result; an approved task without one reads as "failed"."""
        record = await self._store.remote_task_get(task_id)
        if record is None:
            return RequestOutcome("unknown")
        approvals = item_approvals(record.last_json, record.item_count)
        shown = [dict(a) if a is not None else {} for a in approvals]
        if record.status == APPROVED and any(a is None for a in approvals):
            return RequestOutcome(FAILED, shown)
        return RequestOutcome(record.status, shown)

    async def cancel(self, task_id: str, client_id: str) -> None:
        record = await self._store.remote_task_get(task_id)
        if record is not None and record.client_id == client_id:
            await self._cancel(record)

    async def abandon(self, task_id: str) -> None:
        """Cancel whoever filed it: for housekeeping, when no deferral waits any more."""
        record = await self._store.remote_task_get(task_id)
        if record is not None:
            await self._cancel(record)

    # -- refreshing --------------------------------------------------------------------

    async def refresh_due(self, limit: int = 100, concurrency: int = 8) -> int:
        """Read the status of due pending rows; returns how many were due."""
        now = self._clock()
        due = await self._store.remote_tasks_claim_due(now, limit, LEASE_SECONDS)
        gate = asyncio.Semaphore(concurrency)

        async def one(record: RemoteTaskRecord) -> None:
            async with gate:
                try:
                    await self.refresh(record)
                except Exception:  # one broken row must not stop the others
                    log.exception("refreshing remote access request %s failed", record.id)

        await asyncio.gather(*(one(record) for record in due))
        await self._store.remote_tasks_purge(now - RETAIN_SECONDS)
        return len(due)

    async def refresh(self, record: RemoteTaskRecord) -> None:
        """One status read of a pending row, and what follows from it."""
        now = self._clock()
        if now >= record.expires_at:
            await self._finish(record, EXPIRED, record.last_json, [PENDING])
            return
        wait: float | None = None
        try:
            origins = self._origins(await self._pdp.metadata())
            url = _trusted(record.status_endpoint, origins)
            if url is None:
                raise UnusableAnswer("the status endpoint is not on a trusted origin")
            response = await self._client.send("GET", url, "access request status", retries=0)
            wait = retry_after(response.headers.get("retry-after"), now)
            if response.status_code == 410:  # task_expired: it will never be decided
                await self._finish(record, EXPIRED, record.last_json, [PENDING])
                return
            if response.status_code != 200:
                raise UnusableAnswer(f"the status read answered HTTP {response.status_code}")
            answer = read_task_answer(self._client.json(response, "status"), "status answer")
            if answer.id != record.remote_id:
                raise UnusableAnswer("the status answer names another task")
        except PDPError as exc:
            await self._unread(record, now, str(exc), wait)
            return
        if answer.status != PENDING:
            await self._finish(record, answer.status, answer.body, [PENDING])
            return
        values = {
            "last_json": answer.body,
            "cancel_endpoint": _trusted(answer.cancel_endpoint, origins),
            "checked_at": now,
            "checks": record.checks + 1,
            "failures": 0,
            "last_error": None,
            "next_check_at": self._next_check(now, record.checks + 1, wait, record.expires_at),
        }
        await self._store.remote_task_update(record.id, [PENDING], values)

    # -- callbacks ---------------------------------------------------------------------

    async def on_callback(self, raw: bytes, authorization: str | None) -> None:
        """A callback body (its exact bytes): find the row by `state`, check, read the
        status. Raises the problem to answer with (404 for an unknown state)."""
        try:
            data = strict_json.loads(raw)
        except strict_json.StrictJSONError:
            raise BadRequest("the body is not valid JSON") from None
        state = data.get("state") if isinstance(data, dict) else None
        if not isinstance(state, str) or not state:
            raise BadRequest("a callback needs the state it was registered with")
        record = await self._store.remote_task_by_state(_sha256_hex(state))
        if record is None:
            raise status_problem(404, "no access request has this callback state")
        task = data.get("task")
        if isinstance(task, dict) and task.get("id") not in (None, record.remote_id):
            raise BadRequest("the callback names another task")
        jwks_uri = (await self._pdp.metadata()).get("jwks_uri")
        if isinstance(jwks_uri, str):  # else the state is the callback's only credential
            try:
                valid = await self._tokens.verify(
                    jwks_uri, authorization, raw, record.remote_id, self._clock()
                )
            except JWKSError:
                raise status_problem(503, "callback tokens cannot be checked now") from None
            if not valid:
                challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
                raise Unauthorized("a valid callback token is required", headers=challenge)
        now = self._clock()
        if record.status != PENDING:
            return
        if record.checked_at is not None and now - record.checked_at < CALLBACK_GAP_SECONDS:
            await self._store.remote_task_update(record.id, [PENDING], {"next_check_at": now})
            return
        await self.refresh(record)

    async def handle_callback(self, request: Request) -> Response:
        """The endpoint: 204 once the hint was taken; a problem document otherwise."""
        try:
            raw = await read_callback(request, MAX_CALLBACK_BYTES)
            await self.on_callback(raw, request.headers.get("authorization"))
        except AccessRequestProblem as problem:
            return problem_response(problem)
        except PDPError as exc:  # no metadata: the service may try again later
            log.warning("an access request callback could not be checked: %s", exc)
            return problem_response(status_problem(503, "the callback cannot be checked now"))
        except Exception:
            log.exception("an access request callback failed")
            return problem_response(status_problem(500, "the callback could not be processed"))
        return Response(status_code=204, headers={"Cache-Control": "no-store"})

    # -- helpers -----------------------------------------------------------------------

    def _origins(self, metadata: JSONObject) -> TrustedOrigins:
        urls = [self._pdp_url, metadata.get("access_request_endpoint")]
        return TrustedOrigins(
            [u for u in urls if isinstance(u, str)], allow_private=self._allow_private
        )

    async def _submit(
        self, record: RemoteTaskRecord, body: JSONObject, origins: TrustedOrigins
    ) -> TaskAnswer:
        what = "access request submission"
        key = {"Idempotency-Key": record.idempotency_key}
        response = await self._client.send("POST", record.endpoint, what, body=body, headers=key)
        if response.status_code >= 500:
            raise AccessRequestUnavailable(f"{what} answered HTTP {response.status_code}")
        if response.status_code not in (201, 202):
            raise self._client.refusal(response, what, record.endpoint)
        answer = read_task_answer(self._client.json(response, what), f"{what} answer")
        if _trusted(answer.status_endpoint, origins) is None:
            raise UnusableAnswer(f"{what} answer: status_endpoint missing or not trusted")
        return answer

    async def _cancel(self, record: RemoteTaskRecord) -> None:
        """ARAP §10 when the task offers it (409: it had ended); stopped polling either way."""
        if record.status not in (PENDING, SUBMITTING):
            return
        body = record.last_json
        url = _trusted(record.cancel_endpoint, self._origins(await self._pdp.metadata()))
        if url is not None:
            try:
                response = await self._client.send("POST", url, "access request cancellation")
                if response.status_code == 200:
                    body = read_task_answer(self._client.json(response, "cancel"), "cancel").body
                elif response.status_code != 409:
                    log.warning("cancelling %s: HTTP %s", record.id, response.status_code)
            except PDPError as exc:  # its expiry cleans up remotely
                log.warning("cancelling %s failed: %s", record.id, exc)
        await self._finish(record, CANCELLED, body, [PENDING, SUBMITTING])

    async def _finish(
        self,
        record: RemoteTaskRecord,
        status: str,
        body: object,
        expected: Sequence[str],
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Store a terminal status (any but "pending"; unknown ones are not approved) with
        its `task_terminal` row. Straight from a submission that row waits a little: the
        deferral on the task is stored only after `file` returns."""
        now = self._clock()
        values = {**(extra or {}), "status": status, "last_json": body, "updated_at": now}
        values.update(checked_at=now, next_check_at=None)
        delay = TERMINAL_GRACE_SECONDS if SUBMITTING in expected else 0.0
        outbox = [(TASK_TERMINAL, record.id.encode("utf-8"), now + delay)]
        if await self._store.remote_task_update(record.id, expected, values, outbox):
            log.info("remote access request %s ended: %s", record.id, status)

    async def _unread(
        self, record: RemoteTaskRecord, now: float, error: str, wait: float | None
    ) -> None:
        """The status could not be read: the row stays pending and is tried again later."""
        log.warning("remote access request %s: status not read: %s", record.id, error)
        values = {
            "checked_at": now,
            "checks": record.checks + 1,
            "failures": record.failures + 1,
            "last_error": error[:500],
            "next_check_at": self._next_check(now, record.checks + 1, wait, record.expires_at),
        }
        await self._store.remote_task_update(record.id, [PENDING], values)

    def _next_check(self, now: float, checks: int, wait: float | None, expires_at: float) -> float:
        delay = min(wait, MAX_RETRY_AFTER) if wait is not None else self._backoff(checks)
        return min(now + delay, expires_at)

    def _backoff(self, checks: int) -> float:
        base = self._first_check * 2.0 ** min(checks, 16)
        return min(self._max_check, base * random.uniform(0.8, 1.2))


def callback_routes(backend: RemoteAccessRequests) -> list[Route]:
    """`POST /access/v1/callbacks`, for the app's route list."""
    return [Route(CALLBACK_PATH, backend.handle_callback, methods=["POST"])]


def _trusted(url: str | None, origins: TrustedOrigins) -> str | None:
    return url if url is not None and origins.allows(url) else None


def _sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()
