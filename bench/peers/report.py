"""The tables `python -m bench.peers` prints: the medians with their ratios, then every round's
req/s and CPU time per request."""

from __future__ import annotations

import argparse
import statistics
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.peers.__main__ import Row, Target


def round_ratios(bridge: Target, peer: Target) -> list[float]:
    return [b.rate / p.rate for b, p in zip(bridge.runs, peer.runs, strict=True)]


def _cpu(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def report(table: list[Row], labels: dict[str, str], args: argparse.Namespace) -> None:
    print()
    print(
        f"{args.rounds} rounds of {args.seconds:g} s, wrk -t1 -c{args.connections}. "
        "ratio = bridge / peer req/s (above 1: the bridge is faster), of the medians, and the "
        "median of the rounds' ratios. CPU: the server process's CPU time per request "
        "(all its threads), median over the rounds; CPU ratio = peer / bridge (above 1: the "
        "bridge needs less). Latency: median / p99 in ms, medians over the rounds."
    )
    print()
    print(
        "| what | peer | bridge req/s | peer req/s | ratio | round ratio "
        "| CPU µs/req bridge / peer | CPU ratio | bridge latency | peer latency |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in table:
        b_median, b_p99 = row.bridge.latency()
        b_cpu = row.bridge.cpu_per_request()
        for peer in row.peers:
            p_median, p_p99 = peer.latency()
            p_cpu = peer.cpu_per_request()
            ratio = statistics.median(round_ratios(row.bridge, peer))
            cpu_ratio = "n/a" if b_cpu is None or p_cpu is None else f"{p_cpu / b_cpu:.2f}"
            print(
                f"| {row.what} | {labels[peer.label]} | {row.bridge.rate():,.0f} "
                f"| {peer.rate():,.0f} | {row.bridge.rate() / peer.rate():.2f} | {ratio:.2f} "
                f"| {_cpu(b_cpu)} / {_cpu(p_cpu)} | {cpu_ratio} "
                f"| {b_median:.1f} / {b_p99:.1f} | {p_median:.1f} / {p_p99:.1f} |"
            )
    heads = " | ".join(f"round {n}" for n in range(1, args.rounds + 1))
    print()
    print("Round by round, req/s: bridge / peer (ratio)")
    print()
    print(f"| what | peer | {heads} |")
    print("|---|---|" + "---|" * args.rounds)
    for row in table:
        for peer in row.peers:
            cells = " | ".join(
                f"{b.rate:,.0f} / {p.rate:,.0f} ({b.rate / p.rate:.2f})"
                for b, p in zip(row.bridge.runs, peer.runs, strict=True)
            )
            print(f"| {row.what} | {peer.label} | {cells} |")
    if not all(target.cpu for row in table for target in [row.bridge, *row.peers]):
        return
    print()
    print("Round by round, CPU µs per request: bridge / peer")
    print()
    print(f"| what | peer | {heads} |")
    print("|---|---|" + "---|" * args.rounds)
    for row in table:
        for peer in row.peers:
            cells = " | ".join(
                f"{b * 1e6:,.0f} / {p * 1e6:,.0f}"
                for b, p in zip(row.bridge.cpu, peer.cpu, strict=True)
            )
            print(f"| {row.what} | {peer.label} | {cells} |")
