"""What the bridge counts for its operators, in Prometheus' terms (`/metrics`).

The instruments live here, below every part, so that a part counts where the event happens
without knowing how the numbers are served. Labels take bounded values only (route
templates, store names, grant types the bridge serves, protocol error codes), never what a
client sent verbatim.

With `bridge serve --workers N`, prometheus-client's multi-process mode keeps each worker's
numbers in files of a folder shared by the workers (`PROMETHEUS_MULTIPROC_DIR`, set by
`serve` before the workers start), and a scrape answered by any worker adds them up.
Gauges of shared state (deferrals by state, the outbox backlog) are not kept here: they are
read from the store when scraped (`metrics_route`), so every worker reports the same.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Latency buckets for a service that answers in milliseconds (the defaults start at 5 ms).
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "bridge_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "bridge_http_request_duration_seconds",
    "Time from the request's arrival to the end of its answer, by route template.",
    ["route"],
    buckets=_BUCKETS,
)
DECISIONS = Counter(
    "bridge_decisions",
    "AuthZEN decisions, by policy store (or `remote`) and outcome (permit, deny, error).",
    ["store", "outcome"],
)
TOKEN_REQUESTS = Counter(
    "bridge_token_requests",
    "Token requests, by grant type and outcome (`issued` or the OAuth error code; "
    "`authorization_pending` is a deferred request).",
    ["grant_type", "outcome"],
)
OUTBOX_DELIVERIES = Counter(
    "bridge_outbox_deliveries",
    "Outbox delivery attempts, by kind and outcome (delivered, retry, failed).",
    ["kind", "outcome"],
)
HOUSEKEEPING_PASSES = Counter(
    "bridge_housekeeping_passes",
    "Housekeeping passes done by the process holding the housekeeping lease.",
)
