"""Talking to a remote PDP's access request service (ARAP §6 to §10, §12) as its client.

Kept apart from `remote_backend.py` because everything here is about what goes over the
wire and whether to believe it, whatever the bridge then does with it:

- where credentials may go: only to URLs on a trusted origin (the remote PDP's own, or its
  metadata's `access_request_endpoint`), over https (http only to loopback, and only when
  `access_requests.allow_private_callbacks` is on, for local testing);
- the exchange: the remote PDP's credentials on every request, redirects never followed,
  transport failures and 5xx/408/429 retried with the remote PDP's backoff;
- what is sent: a denial whose service is not the remote PDP's own (another origin) is
  filed only with its `binding_token` (the split ARAP: an independent service cannot
  resolve an `evaluation_id`);
- reading answers: a task handle is believed only with a string `id` and `status`; an item
  counts as approved only with an approval with `id` and `approved_until`, and a `result`
  whose `mode` is `reevaluate` or absent (AROP's results carry none: completion by issuance,
  which the bridge reaches by deciding again with the approval, as for `reevaluate`);
  anything else, unknown modes included, is not approved (ARAP §11);
- the errors, as `PDPError`s: the token endpoint answers `server_error` and never defers.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import ipaddress
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC
from urllib.parse import urlsplit

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from starlette.requests import Request

from ..authzen.errors import PDPProtocolError, PDPRequestRejected, PDPUnavailable
from ..authzen.models import JSONObject
from ..authzen.remote_transport import backoff_delay, display_url
from ..jose import strict_json
from ..jose.compact import parse_compact
from ..jose.jwks import JWKSource
from ..settings import RemotePDPSettings
from .callbacks import TYP as CALLBACK_TYP
from .problems import status_problem
from .service import DeniedEvaluation
from .times import parse_rfc3339

REEVALUATE = "reevaluate"
_RETRIED = frozenset({408, 429})
_MAX_DETAIL = 200
_ALGORITHMS = ["ES256", "ES384", "RS256", "PS256", "EdDSA"]
SKEW_SECONDS = 30
_sleep = asyncio.sleep  # replaced in tests that time the backoff


class AccessRequestRefused(PDPRequestRejected):
    """The service refused the submission (a 4xx, usually a problem document), or the
    denial cannot be submitted at all (no `access_request`, an untrusted endpoint)."""

    def __init__(self, message: str, status: int, problem_type: str | None = None) -> None:
        super().__init__(message, status)
        self.problem_type = problem_type


class AccessRequestUnavailable(PDPUnavailable):
    """The service could not be reached, or kept failing (5xx), after the retries."""


class UnusableAnswer(PDPProtocolError):
    """The service answered, but not with what ARAP defines."""


class TrustedOrigins:
    """The origins the bridge sends the remote PDP's credentials to."""

    def __init__(self, urls: Iterable[str], *, allow_private: bool) -> None:
        self._allow_private = allow_private
        self._origins = {o for o in (_origin(u) for u in urls) if o is not None}

    def allows(self, url: object) -> bool:
        if not isinstance(url, str):
            return False
        origin = _origin(url)
        if origin is None or origin not in self._origins:
            return False
        scheme, host, _ = origin
        return scheme == "https" or (self._allow_private and _loopback(host))


@dataclass(frozen=True)
class TaskAnswer:
    """A task handle as the service sent it: `body` is `{"task", "result"?}`."""

    id: str
    status: str
    status_endpoint: str | None
    cancel_endpoint: str | None
    expires_at: float | None
    body: JSONObject


def read_task_answer(data: object, where: str) -> TaskAnswer:
    task = data.get("task") if isinstance(data, dict) else None
    if not isinstance(task, dict):
        raise UnusableAnswer(f"{where} holds no task object")
    task_id, status = task.get("id"), task.get("status")
    if not isinstance(task_id, str) or not task_id or not isinstance(status, str) or not status:
        raise UnusableAnswer(f"{where}: the task has no string id and status")
    links = task.get("links")
    cancel = links.get("cancel") if isinstance(links, dict) else None
    status_endpoint = task.get("status_endpoint")
    body: JSONObject = {"task": task}
    assert isinstance(data, dict)
    if isinstance(data.get("result"), dict):
        body["result"] = data["result"]
    return TaskAnswer(
        id=task_id,
        status=status,
        status_endpoint=status_endpoint if isinstance(status_endpoint, str) else None,
        cancel_endpoint=cancel if isinstance(cancel, str) else None,
        expires_at=parse_rfc3339(task.get("expires_at")),
        body=body,
    )


def item_approvals(body: object, item_count: int) -> list[JSONObject | None]:
    """Each item's approval, in submission order; None where the item is not approved.

    A single request's approval is the top-level `result` of an approved task; a bundle's
    are `task.items[i].result` of approved items only (a top-level `result` never approves
    an item of a bundle, ARAP §8). Items that do not line up with the submission are not
    approved."""
    none: list[JSONObject | None] = [None] * item_count
    task = body.get("task") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(task, dict):
        return none
    if item_count == 1:
        return [_approval(body.get("result"))] if task.get("status") == "approved" else none
    items = task.get("items")
    if not isinstance(items, list) or len(items) != item_count:
        return none
    return [
        _approval(item.get("result"))
        if isinstance(item, dict) and item.get("status") == "approved"
        else None
        for item in items
    ]


def _approval(result: object) -> JSONObject | None:
    approval = result.get("approval") if isinstance(result, dict) else None
    if (
        not isinstance(result, dict)
        or result.get("mode", REEVALUATE) != REEVALUATE  # absent: AROP's token issuance
        or not isinstance(approval, dict)
        or not isinstance(approval.get("id"), str)
        or not approval["id"]
        or parse_rfc3339(approval.get("approved_until")) is None
    ):
        return None
    return dict(approval)  # copied unchanged, `state` included (ARAP §11)


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a `Retry-After` header (delay-seconds or HTTP-date); None without one."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def submission(
    denied: Sequence[DeniedEvaluation],
    client_id: str,
    callback: JSONObject,
    *,
    binding_token_required: bool = False,
) -> JSONObject:
    """ARAP §6, from the evaluations exactly as the remote PDP was sent them: one item per
    denial (a bundle with a `denial` each when there are several), `binding_token` echoed
    byte for byte and never decoded; with `binding_token_required` (a service that is not
    the PDP's own), a denial without one is refused."""
    sent = [d.request.model_dump(exclude_none=True) for d in denied]
    first = sent[0]
    if any(
        s["subject"] != first["subject"] or s.get("context") != first.get("context") for s in sent
    ):
        raise AccessRequestRefused("the denials do not share subject and context", 400)
    items = [
        {
            "resource": s["resource"],
            "action": s["action"],
            "denial": _denial(d.decision_context, binding_token_required),
        }
        for s, d in zip(sent, denied, strict=True)
    ]
    body: JSONObject = {"subject": first["subject"], "context": first.get("context") or {}}
    if len(items) == 1:
        body.update(items[0])
    else:
        body["items"] = items
    return {**body, "client": {"id": client_id}, "callback": callback}


def _denial(context: JSONObject, binding_token_required: bool) -> JSONObject:
    request = context.get("access_request")
    if not isinstance(request, dict):
        raise AccessRequestRefused("a denial is not requestable", 400)
    denial = {k: request[k] for k in ("expires_at", "binding_token", "template") if k in request}
    denial.update(
        {k: context[k] for k in ("evaluation_id", "evaluated_at", "reason") if k in context}
    )
    if not isinstance(denial.get("expires_at"), str):
        raise AccessRequestRefused("a requestable denial has no expires_at", 400)
    if "binding_token" not in denial and "evaluation_id" not in denial:
        raise AccessRequestRefused("a requestable denial has no binding", 400)
    if binding_token_required and not isinstance(denial.get("binding_token"), str):
        raise AccessRequestRefused(
            "the access request service is not the PDP's own: a denial needs a binding_token", 400
        )
    return denial


class CallbackTokens:
    """Checks the bearer JWT a bridge-like service signs its callbacks with (see
    `callbacks.py`): `typ`, a key of the remote PDP's `jwks_uri`, `aud` = our callback URL,
    not expired, the expected `task_id`, and `body_sha256` of the exact body."""

    def __init__(self, audience: str, http: httpx.AsyncClient) -> None:
        self._audience = audience
        self._http = http
        self._sources: dict[str, JWKSource] = {}

    async def verify(
        self, jwks_uri: str, authorization: str | None, body: bytes, task_id: str | None, now: float
    ) -> bool:
        """False when the token is missing or wrong; `JWKSError` when no keys could be had."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        try:
            kid = parse_compact(token).header.get("kid")
            source = self._sources.setdefault(jwks_uri, JWKSource(uri=jwks_uri, http=self._http))
            keys = await source.key_set(kid if isinstance(kid, str) else None)
            decoded = jwt.decode(token, keys, algorithms=_ALGORITHMS)
        except (JoseError, ValueError, UnicodeError):
            return False
        claims = decoded.claims
        aud, exp = claims.get("aud"), claims.get("exp")
        digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()
        return (
            scheme.lower() == "bearer"
            and decoded.header.get("typ") == CALLBACK_TYP
            and self._audience in (aud if isinstance(aud, list) else [aud])
            and isinstance(exp, int | float)
            and exp + SKEW_SECONDS >= now
            and task_id is not None
            and claims.get("task_id") == task_id
            and claims.get("body_sha256") == digest
        )


async def read_callback(request: Request, max_bytes: int) -> bytes:
    """A callback's exact body bytes (its token signs their hash), read up to `max_bytes`."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise status_problem(415, "Content-Type must be application/json")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > max_bytes:
            raise status_problem(413, "the callback body is too large")
    return bytes(raw)


class ARSClient:
    """HTTP to one remote access request service with the remote PDP's credentials."""

    def __init__(self, settings: RemotePDPSettings, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self.http = http
        bearer, key = settings.bearer_token, settings.api_key
        self._secrets = [s.get_secret_value() for s in (bearer, key) if s is not None]
        if bearer is not None:
            self._authorization: str | None = f"Bearer {bearer.get_secret_value()}"
        else:
            self._authorization = None if key is None else key.get_secret_value()

    async def send(
        self,
        method: str,
        url: str,
        what: str,
        *,
        body: JSONObject | None = None,
        headers: dict[str, str] | None = None,
        retries: int | None = None,
    ) -> httpx.Response:
        """The last answer, whatever its status; `AccessRequestUnavailable` when none came.
        Only a retryable status (5xx but 501, 408, 429) or a transport failure is retried:
        send only what may be repeated (a submission carries its `Idempotency-Key`)."""
        sent = {"Accept": "application/json, application/problem+json", **(headers or {})}
        content = None
        if body is not None:
            sent["Content-Type"] = "application/json"
            content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        if self._authorization is not None:
            sent["Authorization"] = self._authorization
        attempts = (self._settings.retries if retries is None else retries) + 1
        cause = ""
        for attempt in range(attempts):
            if attempt:
                await _sleep(backoff_delay(self._settings.backoff_seconds, attempt - 1))
            try:
                response = await self.http.request(
                    method,
                    url,
                    content=content,
                    headers=sent,
                    timeout=self._settings.timeout_seconds,
                    follow_redirects=False,
                )
            except httpx.HTTPError as exc:
                cause = self.scrub(f"{type(exc).__name__}: {exc}".rstrip(": "))
                continue
            status = response.status_code
            retryable = status in _RETRIED or (status >= 500 and status != 501)
            if not retryable or attempt == attempts - 1:
                return response
        raise AccessRequestUnavailable(
            f"{what} at {display_url(url)} failed after {attempts} attempt(s): {cause}"
        )

    def json(self, response: httpx.Response, what: str) -> object:
        try:
            return strict_json.loads(response.content)
        except strict_json.StrictJSONError as exc:
            raise UnusableAnswer(f"{what} answer is not valid JSON ({exc})") from None

    def refusal(self, response: httpx.Response, what: str, url: str) -> AccessRequestRefused:
        """A non-success answer as an error, naming the problem's `type` and `detail`."""
        try:
            problem = json.loads(response.content.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            problem = None
        problem = problem if isinstance(problem, dict) else {}
        kind, detail = problem.get("type"), problem.get("detail")
        kind = kind if isinstance(kind, str) else None
        message = f"{what} refused by {display_url(url)}: HTTP {response.status_code} {kind}"
        detail = " ".join(self.scrub(str(detail or "")).split())[:_MAX_DETAIL]
        return AccessRequestRefused(f"{message} {detail}".strip(), response.status_code, kind)

    def scrub(self, text: str) -> str:
        for secret in filter(None, self._secrets):
            text = text.replace(secret, "***")
        return text


def same_origin(a: str, b: str) -> bool:
    return _origin(a) is not None and _origin(a) == _origin(b)


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme not in ("https", "http") or not host or "@" in parts.netloc:
        return None
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
