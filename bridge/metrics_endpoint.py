"""`/metrics` for operators (Prometheus text format), and the layer that times every request.

Off unless `[metrics] enabled`; with `token_file`, a scraper must send that bearer token.
The counters come from `bridge.metrics` (from every worker, in multi-process mode); the
gauges of shared state are read from the store on each scrape, so whichever worker or
replica answers reports the same backlog.
"""

from __future__ import annotations

import hmac
import os
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import HTTP_LATENCY, HTTP_REQUESTS
from .problems import Problem
from .secret_files import SecretFileUnusable, read_secret_file
from .settings import Settings
from .store.contract import Store

MULTIPROCESS_ENVIRONMENT = "PROMETHEUS_MULTIPROC_DIR"
# The route label of a request no route matched (a 404): one value, whatever the path was.
UNMATCHED = "unmatched"
# Methods as labels; anything else a client sends counts as `other`.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def token_problems(settings: Settings) -> list[Problem]:
    """What keeps `/metrics` from starting as configured (for `bridge check` and `serve`)."""
    if not settings.metrics.enabled or settings.metrics.token_file is None:
        return []
    path = settings.resolve(settings.metrics.token_file)
    try:
        read_secret_file(path, "metrics.token_file")
    except SecretFileUnusable as exc:
        return [Problem(str(path), None, str(exc))]
    return []


def metrics_routes(settings: Settings, store: Store) -> list[Route]:
    if not settings.metrics.enabled:
        return []
    token_file = settings.metrics.token_file
    expected = (
        read_secret_file(settings.resolve(token_file), "metrics.token_file").encode()
        if token_file is not None
        else None
    )

    async def metrics(request: Request) -> Response:
        if expected is not None and not _bearer_matches(request, expected):
            # The error shape of the bridge's routes outside OAuth and ARAP.
            return JSONResponse(
                {"error": {"status": 401, "message": "a bearer token is required"}},
                401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        shared = CollectorRegistry(auto_describe=False)
        shared.register(_Snapshot(await _shared_state(store)))
        body = generate_latest(_process_registry()) + generate_latest(shared)
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})

    return [Route("/metrics", metrics, methods=["GET"])]


def _bearer_matches(request: Request, expected: bytes) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected)


def _process_registry() -> CollectorRegistry:
    """This process's counters, or every worker's added up in multi-process mode."""
    if os.environ.get(MULTIPROCESS_ENVIRONMENT):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


async def _shared_state(store: Store) -> list[Metric]:
    deferrals = GaugeMetricFamily(
        "bridge_deferrals", "Deferred token requests in the store, by state.", labels=["state"]
    )
    for state, count in sorted((await store.deferral_counts()).items()):
        deferrals.add_metric([state], count)
    outbox = GaugeMetricFamily(
        "bridge_outbox_rows",
        "Outbox rows in the store, by status (`pending` is the backlog).",
        labels=["status"],
    )
    counts = await store.outbox_counts()
    for status in sorted({"pending", *counts}):
        outbox.add_metric([status], counts.get(status, 0))
    return [deferrals, outbox]


class _Snapshot(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> list[Metric]:
        return self._metrics


class RequestMetrics:
    """Counts and times every HTTP request by route template, method and status. Plain
    ASGI, like `RequestIDMiddleware`: it is on every request's path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # The router leaves the route it matched in the scope.
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            method = scope["method"] if scope["method"] in METHODS else "other"
            HTTP_REQUESTS.labels(route, method, str(status)).inc()
            HTTP_LATENCY.labels(route).observe(time.perf_counter() - started)
