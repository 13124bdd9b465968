"""What the HTTP benchmarks share: servers started as subprocesses, wrk runs, alternating rounds,
and the bridge's benchmark configuration.

Every wrk run goes through `bench/cycle.lua`, which cycles through request bodies (one is a
plain run) and can give each request a value of its own for one header (DPoP proofs).
"""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]
CYCLE_SCRIPT = Path(__file__).resolve().parent / "cycle.lua"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Started:
    url: str
    pid: int


@contextmanager
def started_server(command: list[str], port: int) -> Iterator[Started]:
    """Start `command` (from the repository root), wait until it answers HTTP on `port`,
    and stop it afterwards. Its standard error goes to a file, shown if it fails to start."""
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=errors)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(url + "/", timeout=1)
                    break
                except httpx.HTTPError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        errors.seek(0)
                        message = errors.read().decode(errors="replace")
                        raise RuntimeError(f"{command[:3]} did not start: {message}") from None
                    time.sleep(0.1)
            yield Started(url, proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@contextmanager
def server(command: list[str], port: int) -> Iterator[str]:
    """`started_server`, for callers that need only its URL."""
    with started_server(command, port) as started:
        yield started.url


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user and system, all threads) that process `pid` has used, where the
    system tells it (Linux `/proc`); None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name, which is in parentheses and may hold spaces.
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bridge_command(config: Path, port: int) -> list[str]:
    """`bridge serve`, as `make run` starts it, with `config` on `port`."""
    serve = [sys.executable, "-m", "bridge.cli", "serve"]
    return [*serve, "--config", str(config), "--port", str(port)]


def echo_command(port: int) -> list[str]:
    """The baseline: the bare Starlette JSON echo endpoint (`bench/echo_server.py`)."""
    return [sys.executable, str(REPO / "bench" / "echo_server.py"), str(port)]


@dataclass(frozen=True)
class WrkRun:
    """One wrk run: throughput, and latency percentiles in seconds."""

    rate: float
    requests: int
    median: float
    p99: float


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    assert match, text
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk_run(
    url: str,
    bodies: Sequence[str],
    headers: dict[str, str],
    seconds: float,
    connections: int,
    workdir: Path,
    *,
    per_request: tuple[str, Sequence[str]] | None = None,
) -> WrkRun:
    """POST `bodies` in turn to `url` with `headers`, `wrk -t1 -c<connections>`, for `seconds`.

    `per_request` is a header name and one value per request, each sent once (DPoP proofs):
    the run fails if wrk sends more requests than there are values, as it does on any
    non-2xx answer."""
    if any("\n" in body for body in bodies) or not bodies:
        raise ValueError("bodies must be one or more single-line strings")
    body_file = workdir / "bodies.txt"
    body_file.write_text("\n".join(bodies) + "\n")
    args = [str(body_file)]
    if per_request is not None:
        name, values = per_request
        value_file = workdir / "values.txt"
        value_file.write_text("\n".join(values) + "\n")
        args += [name, str(value_file)]
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    command += [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    command += ["-s", str(CYCLE_SCRIPT), url, "--", *args]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"errors while benchmarking {url}:\n{out}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    median = re.search(r"^ +50% +(\S+)$", out, re.MULTILINE)
    p99 = re.search(r"^ +99% +(\S+)$", out, re.MULTILINE)
    assert rate and count and median and p99, out
    run = WrkRun(
        float(rate.group(1)), int(count.group(1)), _seconds(median.group(1)), _seconds(p99.group(1))
    )
    if per_request is not None and run.requests > len(per_request[1]):
        raise RuntimeError(f"{url}: {run.requests} requests, only {len(per_request[1])} values")
    return run


def wrk(url: str, body: object, seconds: float, connections: int, workdir: Path) -> float:
    """Requests per second for POSTing `body` as JSON to `url`."""
    return wrk_post(
        url, json.dumps(body), {"Content-Type": "application/json"}, seconds, connections, workdir
    )


def wrk_post(
    url: str,
    body: str,
    headers: dict[str, str],
    seconds: float,
    connections: int,
    workdir: Path,
) -> float:
    """Requests per second for POSTing `body` with `headers`; fails on any non-2xx answer."""
    return wrk_run(url, [body], headers, seconds, connections, workdir).rate


def alternate_samples(rounds: int, runs: dict[str, Callable[[], T]]) -> dict[str, list[T]]:
    """Every measurement of every round, taken in alternating rounds so drift hits all alike."""
    samples: dict[str, list[T]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            samples[name].append(run())
    return samples


def alternate(rounds: int, runs: dict[str, Callable[[], float]]) -> dict[str, float]:
    """Median of each measurement, taken in alternating rounds."""
    samples = alternate_samples(rounds, runs)
    return {name: statistics.median(values) for name, values in samples.items()}


def bridge_config(
    workdir: Path,
    port: int,
    stores: dict[str, Path] | None = None,
    storage: str | None = None,
) -> Path:
    """The bridge as `make run` has it, minus what would disturb a measurement (access log,
    reload) and with its key file in `workdir`; `stores` (by default only the product's
    `default` store) are the policy stores it serves, and `storage` the body of its `[storage]`
    table (by default a SQLite file in `workdir`)."""
    stores = stores or {"default": REPO / "policies" / "default"}
    storage = storage if storage is not None else f'path = "{workdir / "bridge.sqlite3"}"'
    config = workdir / "bridge.toml"
    config.write_text(
        f'[server]\npublic_url = "http://127.0.0.1:{port}"\n'
        'log_level = "warning"\naccess_log = false\n\n'
        "[reload]\nenabled = false\n\n"
        f"[storage]\n{storage}\n\n"
        "[oauth]\n"
        f'clients_file = "{REPO / "clients.toml"}"\n'
        f'profiles_dir = "{REPO / "profiles"}"\n'
        f'key_encryption_key_file = "{workdir / "signing-keys.kek"}"\n'
        'signing_alg = "ES256"\n'
        + "".join(f'\n[stores.{name}]\npath = "{path}"\n' for name, path in stores.items())
    )
    return config
