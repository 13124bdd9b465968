"""Throughput of `bridge serve --workers 2` against `--workers 1` on the same machine, side by
side: `/token` (client_credentials + RAR, the demo agent) and `/access/v1/evaluation` (the
demo store), each measured with wrk in alternating rounds. On 2 cores the target is a ratio
of at least 1.7; wrk itself takes part of a core, so the figure is a floor.

Usage: python -m bench.workers [--seconds 5] [--rounds 3] [--connections 32]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.authzen import DEMO
from bench.harness import alternate, bridge_command, bridge_config, free_port, server, wrk
from bench.token_endpoint import FORM, check_token, token_request, wrk_form

WORKERS = (1, 2)


def warm_up(url: str, seconds: float = 3.0) -> None:
    """Until every worker has answered: each one builds its app when it starts."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with httpx.Client(timeout=10) as http:
            check_token(token_request(http, f"{url}/token"), "Bearer")


def figures(args: argparse.Namespace, workdir: Path) -> None:
    runs: dict[str, Callable[[], float]] = {}
    with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
        folders = dict(zip(WORKERS, (Path(first), Path(second)), strict=True))
        ports = {n: free_port() for n in WORKERS}
        configs = {n: bridge_config(folders[n], ports[n]) for n in WORKERS}
        commands = {
            n: [*bridge_command(configs[n], ports[n]), "--workers", str(n)] for n in WORKERS
        }
        with server(commands[1], ports[1]) as single, server(commands[2], ports[2]) as double:
            urls = {1: single, 2: double}
            for url in urls.values():
                warm_up(url)
            for n, url in urls.items():
                runs[f"token {n}"] = _run(wrk_form, f"{url}/token", FORM, args, workdir)
                runs[f"evaluation {n}"] = _run(
                    wrk, f"{url}/access/v1/evaluation", DEMO, args, workdir
                )
            rates = alternate(args.rounds, runs)

    print("bridge serve --workers 2 vs --workers 1 (same machine, alternating rounds)")
    print(f"{'':40}{'1 worker':>12}{'2 workers':>12}{'ratio':>8}")
    for name, label in (
        ("token", "/token, client_credentials + RAR"),
        ("evaluation", "/access/v1/evaluation"),
    ):
        one, two = rates[f"{name} 1"], rates[f"{name} 2"]
        print(f"  {label:38}{one:8.0f} r/s{two:8.0f} r/s   x{two / one:.2f}   (target >= 1.70)")
    print(
        f"  samples: {args.rounds} wrk rounds of {args.seconds:g} s, {args.connections} connections"
    )


def _run(
    measure: Callable[[str, Any, float, int, Path], float],
    url: str,
    body: object,
    args: argparse.Namespace,
    workdir: Path,
) -> Callable[[], float]:
    return lambda: measure(url, body, args.seconds, args.connections, workdir)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk not found: install wrk, or run `make bench`")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        figures(args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
