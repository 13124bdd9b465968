"""Token endpoint on the two store backends: `POST /token` with the PostgreSQL store beside the
same bridge with the SQLite store, same settings otherwise, both served at once; every figure
is a PostgreSQL / SQLite ratio from one run.

1. HTTP throughput (wrk, alternating rounds, medians) of a `client_credentials` request with
   RAR and `client_secret_basic`: the store is read for the signing key only (cached 2 s),
   so this shows what a second database process costs a request that barely uses it.
2. Latency over one keep-alive connection, the two bridges alternating request by request:
   the same request, and the same with a DPoP proof, whose `jti` is written to the replay
   cache (one round trip to the database per request).

PostgreSQL is a private server started for the run (`bench/databases.py`: loopback, commits
wait for their WAL write but not for a disk flush, as SQLite's WAL mode does).

Usage: python -m bench.token_backends [--seconds 5] [--rounds 3] [--connections 16] [--requests 300]
Needs `wrk` on the PATH (`make bench` installs it where it can).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from joserfc.jwk import ECKey

from bench.databases import database
from bench.databases import server as database_server
from bench.harness import alternate, bridge_config, free_port, server
from bench.token_endpoint import (
    FORM,
    check_token,
    dpop_proof,
    token_request,
    wrk_form,
)

BACKENDS = ("sqlite", "postgres")


def latencies(urls: dict[str, str], requests: int) -> dict[str, list[float]]:
    """Seconds per request, by `<backend> <kind>`, the backends and kinds alternating."""
    key = ECKey.generate_key("P-256")
    samples: dict[str, list[float]] = {
        f"{backend} {kind}": [] for backend in urls for kind in ("Bearer", "DPoP")
    }
    with httpx.Client(timeout=10) as http:
        for url in urls.values():  # warm up and check (not timed)
            check_token(token_request(http, url), "Bearer")
            check_token(token_request(http, url, dpop_proof(key, url)), "DPoP")
        # Signed before timing; well within the server's `iat` leeway (60 s by default).
        proofs = {url: [dpop_proof(key, url) for _ in range(requests)] for url in urls.values()}
        for n in range(requests):
            for backend, url in urls.items():
                for kind, proof in (("Bearer", None), ("DPoP", proofs[url][n])):
                    started = time.perf_counter()
                    response = token_request(http, url, proof)
                    samples[f"{backend} {kind}"].append(time.perf_counter() - started)
                    assert response.status_code == 200, response.text
    return samples


def _wrk(url: str, args: argparse.Namespace, workdir: Path) -> Callable[[], float]:
    return lambda: wrk_form(url, FORM, args.seconds, args.connections, workdir)


def run(args: argparse.Namespace, workdir: Path) -> None:
    with database_server("postgres") as postgres:
        ports = {backend: free_port() for backend in BACKENDS}
        commands = {}
        for backend in BACKENDS:
            folder = workdir / backend
            folder.mkdir()
            db = database(backend, folder, "token_bench", postgres)
            config = bridge_config(folder, ports[backend], storage=db.storage)
            commands[backend] = [
                sys.executable,
                *("-m", "bridge.cli", "serve", "--config", str(config)),
                *("--port", str(ports[backend])),
            ]
        with (
            server(commands["sqlite"], ports["sqlite"]) as sqlite_url,
            server(commands["postgres"], ports["postgres"]) as postgres_url,
        ):
            urls = {"sqlite": f"{sqlite_url}/token", "postgres": f"{postgres_url}/token"}
            with httpx.Client(timeout=10) as http:
                for url in urls.values():
                    check_token(token_request(http, url), "Bearer")
            rates = alternate(
                args.rounds, {backend: _wrk(url, args, workdir) for backend, url in urls.items()}
            )
            timed = latencies(urls, args.requests)

    def median_ms(name: str) -> float:
        return statistics.median(timed[name]) * 1000

    print("/token, PostgreSQL store vs SQLite store (same settings, served side by side)")
    print(f"  {'':<44} {'SQLite':>10} {'PostgreSQL':>11}   ratio")
    ratio = rates["postgres"] / rates["sqlite"]
    print(
        f"  {'throughput, client_credentials + RAR':<44} {rates['sqlite']:>6.0f} r/s"
        f" {rates['postgres']:>7.0f} r/s   x{ratio:.2f}"
    )
    for kind, text in (("Bearer", "latency, one connection"), ("DPoP", "  with a DPoP proof")):
        a, b = median_ms(f"sqlite {kind}"), median_ms(f"postgres {kind}")
        print(f"  {text:<44} {a:>7.2f} ms {b:>8.2f} ms   x{b / a:.2f}")
    dpop_cost = {
        backend: median_ms(f"{backend} DPoP") - median_ms(f"{backend} Bearer")
        for backend in BACKENDS
    }
    print(
        f"  {'  the proof (verify + replay cache write)':<44} {dpop_cost['sqlite']:>7.2f} ms"
        f" {dpop_cost['postgres']:>8.2f} ms"
    )
    print(f"  samples: {args.rounds} wrk rounds of {args.seconds:g} s, {args.requests} requests")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--requests", type=int, default=300, help="per backend and kind")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk not found: install wrk, or run `make bench`")
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-token-backends-") as tmp:
        run(args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
