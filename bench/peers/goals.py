"""The performance goals, read off one run of `python -m bench.peers`, and the latency of a
DPoP-bound token request beside a Bearer one.

- `/token` (Bearer) at least as many requests a second as node-oidc-provider;
- `/access/v1/evaluation` (one permit) at least as many as the cedar-wasm Node PDP;
- varied evaluation requests (the todo interop mix, the `default` store's mix with
  `properties`) at least 0.6 times the bare echo's rate on the same server settings.

Each ratio is of the rows' median req/s, with the median of the rounds' own ratios and the
ratio of CPU time per request beside it (peer / bridge: above 1, the bridge needs less).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bench.token_endpoint import latencies


# What the goals read of `__main__`'s rows (read-only, so its dataclasses fit).
class _Run(Protocol):
    @property
    def rate(self) -> float: ...


class _Target(Protocol):
    @property
    def label(self) -> str: ...

    @property
    def runs(self) -> Sequence[_Run]: ...

    def rate(self) -> float: ...

    def cpu_per_request(self) -> float | None: ...


class _Row(Protocol):
    @property
    def what(self) -> str: ...

    @property
    def bridge(self) -> _Target: ...

    @property
    def peers(self) -> Sequence[_Target]: ...


@dataclass(frozen=True)
class Goal:
    what: str  # the row's label starts with this
    peer: str  # the peer's label
    at_least: float


GOALS = (
    Goal("/token, Bearer", "oidc", 1.0),
    Goal("/access/v1/evaluation", "cedar", 1.0),
    Goal("todo interop mix", "echo", 0.6),
    Goal("default store, properties", "echo", 0.6),
)


def goal_lines(table: Sequence[_Row]) -> list[str]:
    lines = []
    for goal in GOALS:
        row = next(r for r in table if r.what.startswith(goal.what))
        peer = next(p for p in row.peers if p.label == goal.peer)
        ratio = row.bridge.rate() / peer.rate()
        rounds = statistics.median(
            b.rate / p.rate for b, p in zip(row.bridge.runs, peer.runs, strict=True)
        )
        b_cpu, p_cpu = row.bridge.cpu_per_request(), peer.cpu_per_request()
        cpu = "n/a" if b_cpu is None or p_cpu is None else f"{p_cpu / b_cpu:.2f}"
        verdict = "met" if ratio >= goal.at_least else "NOT met"
        lines.append(
            f"  {row.what} / {goal.peer}: {ratio:.2f} (rounds {rounds:.2f}, CPU {cpu}); "
            f"goal >= {goal.at_least:g}: {verdict}"
        )
    return lines


def dpop_latency_lines(urls: dict[str, str], requests: int) -> list[str]:
    """One connection, one request at a time, Bearer and DPoP alternating (proofs signed
    before the clock starts): the median of each, per token server."""
    lines = []
    for name, url in urls.items():
        bearer, dpop = latencies(url, requests)
        lines.append(
            f"  {name}: Bearer {bearer * 1000:.2f} ms, DPoP {dpop * 1000:.2f} ms "
            f"(+{(dpop - bearer) * 1000:.2f} ms)"
        )
    return lines
