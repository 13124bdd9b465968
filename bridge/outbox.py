"""The outbox worker: delivers what state changes queued, with retries and backoff.

Handlers are registered per kind (a client ping, an ARAP callback, an internal follow-up
such as resolving deferrals once their access request ended). A handler says whether the
row is done, should be retried, or should be given up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpx

from .metrics import OUTBOX_DELIVERIES
from .outbound import OutboundPoster, TargetRefused
from .store.contract import OutboxRow, OutboxStore

log = logging.getLogger("bridge.outbox")


@dataclass(frozen=True, slots=True)
class Delivered:
    pass


@dataclass(frozen=True, slots=True)
class Retry:
    reason: str


@dataclass(frozen=True, slots=True)
class GiveUp:
    reason: str


Outcome = Delivered | Retry | GiveUp
Handler = Callable[[OutboxRow], Awaitable[Outcome]]

# Answers worth another attempt besides 5xx: a timeout, too many requests.
_RETRIED = frozenset({408, 429})


async def post_outcome(
    poster: OutboundPoster, url: str, headers: Mapping[str, str], body: bytes, what: str
) -> Outcome:
    """POST `body` to `url`, and what the answer means for the delivery of `what` (its
    words in the reason): a 2xx is delivered; no answer, 408, 429 or a 5xx is tried again;
    a refused target or any other answer is given up."""
    try:
        status = await poster.post(url, headers, body)
    except TargetRefused as exc:
        return GiveUp(f"{what} target refused: {exc}")
    except (httpx.HTTPError, TimeoutError) as exc:  # TimeoutError before its base OSError
        return Retry(f"{what} unreachable: {type(exc).__name__}")
    except OSError as exc:
        return Retry(f"{what} host not resolved: {exc.strerror or type(exc).__name__}")
    if 200 <= status < 300:
        return Delivered()
    if status >= 500 or status in _RETRIED:
        return Retry(f"{what} answered {status}")
    return GiveUp(f"{what} answered {status}")


@dataclass(frozen=True)
class RetryPolicy:
    first_delay: float = 1.0
    max_delay: float = 300.0
    max_attempts: int = 12

    def delay(self, attempts: int) -> float:
        base: float = min(self.max_delay, self.first_delay * 2.0 ** (attempts - 1))
        return base * (1 + random.random() * 0.1)  # jitter: replicas do not retry in step


class OutboxWorker:
    def __init__(
        self,
        store: OutboxStore,
        handlers: dict[str, Handler],
        *,
        retry: RetryPolicy | None = None,
        idle_seconds: float = 0.2,
        lease_seconds: float = 60.0,
    ) -> None:
        self._store = store
        self._handlers = handlers
        self._retry = retry or RetryPolicy()
        self._idle = idle_seconds
        self._lease = lease_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Something was queued: look now rather than at the next idle tick."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run_once(self) -> int:
        """Deliver what is due now; returns how many rows were handled."""
        rows = await self._store.claim_outbox(time.time(), 50, self._lease)
        await asyncio.gather(*(self._deliver(row) for row in rows))
        return len(rows)

    async def _loop(self) -> None:
        while True:
            try:
                handled = await self.run_once()
            except Exception:  # a dead worker would silently stop every ping
                log.exception("outbox pass failed")
                handled = 0
            if handled == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle)
                self._wake.clear()

    async def _deliver(self, row: OutboxRow) -> None:
        handler = self._handlers.get(row.kind)
        if handler is None:
            OUTBOX_DELIVERIES.labels("unknown", "failed").inc()
            await self._store.outbox_failed(row.id, f"no handler for {row.kind}")
            return
        try:
            outcome = await handler(row)
        except Exception as exc:
            log.exception("outbox %s #%d failed", row.kind, row.id)
            outcome = Retry(f"handler error: {type(exc).__name__}")
        if isinstance(outcome, Delivered):
            OUTBOX_DELIVERIES.labels(row.kind, "delivered").inc()
            await self._store.outbox_done(row.id)
        elif isinstance(outcome, GiveUp) or row.attempts >= self._retry.max_attempts:
            OUTBOX_DELIVERIES.labels(row.kind, "failed").inc()
            log.warning("outbox %s #%d given up: %s", row.kind, row.id, _reason(outcome))
            await self._store.outbox_failed(row.id, _reason(outcome))
        else:
            OUTBOX_DELIVERIES.labels(row.kind, "retry").inc()
            delay = self._retry.delay(row.attempts)
            await self._store.outbox_retry(row.id, time.time() + delay, outcome.reason)


def _reason(outcome: Outcome) -> str:
    return getattr(outcome, "reason", "delivered")
