"""The bridge against the peers a user would run instead, side by side in one run.

Every server is one process; wrk drives each (`wrk -t1 -c16`) in alternating rounds: in each
round every row measures the bridge and its peers (the peers first every other round), so
drift hits all alike. Many short rounds rather than a few long ones: on a shared machine
the load of other work comes and goes, and a pair measured seconds apart sees the same.
Each target first gets a warm-up run (2 s) that is not counted.

1. `POST /token`, client_credentials with client_secret_basic and one `customer_records`
   authorization_details entry, ES256 JWT access token: against node-oidc-provider 9 set up
   for the same (`oidc_provider.mjs`).
2. The same token request with a DPoP proof, each request its own proof (signed before the
   run, a unique `jti` each, cycled by `bench/cycle.lua`): against node-oidc-provider again.
3. `POST /access/v1/evaluation`, a permit from the `default` store: against a bare Node
   `http` server deciding with @cedar-policy/cedar-wasm over the same store (`cedar_pdp.mjs`).
4. The 40 todo interop requests on `/stores/todo/access/v1/evaluation`, in turn: against the
   bare Starlette JSON echo (`bench/echo_server.py`) and the cedar-wasm server.
5. Varied requests with `properties` on the `default` store, in turn: against the same two.

Before any timing, each server must answer right: both token servers an ES256 JWT (signature
checked against their JWKS) carrying the requested authorization_details (and, with DPoP,
bound to the proof's key); the bridge and the cedar-wasm server the decisions the stores'
tests expect, for every request of the mixes and every test case of the `default` store.

Beside req/s, each run reads the CPU time the server process used (Linux `/proc`): CPU per
request moves far less than throughput when other work loads the machine.

After the rounds: the latency of a token request with a DPoP proof beside a Bearer one, one
request at a time, on both token servers; then the performance goals (`goals.py`) as ratios.

Usage: python -m bench.peers [--seconds 3] [--rounds 5] [--connections 16] [--latency-requests 200]
Needs wrk, node and npm on the PATH; installs the peers with `npm ci` when needed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib.metadata import version as python_version
from pathlib import Path
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from bench.authzen import DEMO
from bench.harness import (
    Started,
    WrkRun,
    bridge_command,
    bridge_config,
    cpu_seconds,
    echo_command,
    free_port,
    started_server,
    wrk_run,
)
from bench.peers import goals, mixes, node
from bench.peers.mixes import Case
from bench.peers.report import report
from bench.token_endpoint import (
    BASIC,
    CLIENT_ID,
    CLIENT_SECRET,
    DETAILS,
    FORM,
    FORM_MEDIA_TYPE,
    check_token,
    dpop_proof,
)
from bridge.oauth.metadata import METADATA_PATH

RESOURCE = "https://crm.example.com"
JSON_HEADERS = {"Content-Type": "application/json"}
TOKEN_HEADERS = {"Content-Type": FORM_MEDIA_TYPE, "Authorization": BASIC}
# DPoP proofs signed per run: the throughput of the same server without DPoP, times this.
PROOF_MARGIN = 1.5
# The bridge accepts a proof whose `iat` is at most 60 s off (`dpop.iat_leeway_seconds`),
# node-oidc-provider 300 s; the proofs are signed in the seconds before a run.
LONGEST_DPOP_RUN = 40
WARMUP_SECONDS = 2


@dataclass
class Target:
    """One server's side of a row: what wrk posts where, and every round's run."""

    label: str
    url: str
    pid: int  # the server's process
    bodies: list[str]
    headers: dict[str, str]
    dpop_key: ECKey | None = None
    sized_by: Target | None = None  # the same server's run without DPoP, to size the proofs
    runs: list[WrkRun] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # the server's CPU seconds per request
    warmup: WrkRun | None = None

    def rate(self) -> float:
        return statistics.median(run.rate for run in self.runs)

    def cpu_per_request(self) -> float | None:
        """Median over the rounds, in microseconds; None where CPU time cannot be read."""
        return statistics.median(self.cpu) * 1e6 if self.cpu else None

    def latency(self) -> tuple[float, float]:
        """Median over the rounds of each run's median and p99, in milliseconds."""
        return (
            statistics.median(run.median for run in self.runs) * 1000,
            statistics.median(run.p99 for run in self.runs) * 1000,
        )


@dataclass
class Row:
    what: str
    bridge: Target
    peers: list[Target]


def measure(
    target: Target, args: argparse.Namespace, workdir: Path, *, warmup: bool = False
) -> WrkRun:
    """One wrk run of `target`, kept among its rounds' runs, or as its warm-up run."""
    seconds = WARMUP_SECONDS if warmup else args.seconds
    per_request = None
    if target.dpop_key is not None:
        assert target.sized_by is not None and target.sized_by.warmup is not None
        runs = [target.sized_by.warmup, *target.sized_by.runs]
        expected = max(run.rate for run in runs) * seconds
        # Signed just before the run (see LONGEST_DPOP_RUN), each with a `jti` of its own.
        proofs = [
            dpop_proof(target.dpop_key, target.url)
            for _ in range(int(expected * PROOF_MARGIN) + 1000)
        ]
        per_request = ("DPoP", proofs)
    cpu_before = cpu_seconds(target.pid)
    run = wrk_run(
        target.url,
        target.bodies,
        target.headers,
        seconds,
        args.connections,
        workdir,
        per_request=per_request,
    )
    cpu_after = cpu_seconds(target.pid)
    if warmup:
        target.warmup = run
        return run
    target.runs.append(run)
    if cpu_before is not None and cpu_after is not None:
        target.cpu.append((cpu_after - cpu_before) / run.requests)
    return run


# -- checks before timing ----------------------------------------------------------------


def check_token_server(
    http: httpx.Client, base: str, metadata_path: str, key: ECKey | None
) -> None:
    """A token for exactly the requested entry: an ES256 JWT that the server's own JWKS
    verifies, carrying the authorization_details (and, with DPoP, bound to the key)."""
    token_url = base + "/token"
    headers = {"Authorization": BASIC}
    if key is not None:
        headers["DPoP"] = dpop_proof(key, token_url)
    response = http.post(token_url, data=FORM, headers=headers)
    check_token(response, "Bearer" if key is None else "DPoP")
    jwks = http.get(http.get(base + metadata_path).json()["jwks_uri"]).json()
    token = jwt.decode(
        response.json()["access_token"], KeySet.import_key_set(jwks), algorithms=["ES256"]
    )
    assert token.header["alg"] == "ES256", token.header
    assert token.claims.get("authorization_details") == DETAILS, token.claims
    if key is not None:
        assert token.claims.get("cnf") == {"jkt": key.thumbprint()}, token.claims


def check_decisions(http: httpx.Client, url: str, cases: list[Case]) -> None:
    wrong = []
    for case in cases:
        response = http.post(url, content=case.body(), headers=JSON_HEADERS)
        assert response.status_code == 200, (url, case.request, response.text)
        if response.json()["decision"] is not case.decision:
            wrong.append((case.request, response.json()))
    if wrong:
        raise AssertionError(f"{url}: {len(wrong)} decisions differ from the tests': {wrong}")


def check_echo(http: httpx.Client, url: str, cases: list[Case]) -> None:
    for case in cases:
        response = http.post(url, content=case.body(), headers=JSON_HEADERS)
        assert response.json() == case.request, response.text


# -- the run -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Servers:
    bridge: Started
    echo: Started
    oidc: Started
    cedar: Started


def rows(servers: Servers) -> list[Row]:
    form = urlencode(FORM)

    def token(label: str, key: ECKey | None = None) -> Target:
        started: Started = getattr(servers, label)
        url = started.url + "/token"
        return Target(label, url, started.pid, [form], TOKEN_HEADERS, dpop_key=key)

    bridge_bearer, oidc_bearer = token("bridge"), token("oidc")
    bridge_dpop = token("bridge", ECKey.generate_key("P-256"))
    oidc_dpop = token("oidc", ECKey.generate_key("P-256"))
    bridge_dpop.sized_by, oidc_dpop.sized_by = bridge_bearer, oidc_bearer

    def json_target(label: str, path: str, cases: list[Case]) -> Target:
        started: Started = getattr(servers, label)
        bodies = [case.body() for case in cases]
        return Target(label, started.url + path, started.pid, bodies, JSON_HEADERS)

    demo = [Case(DEMO, True)]
    todo, default = mixes.todo_interop(), mixes.default_with_properties()
    todo_path = "/stores/todo/access/v1/evaluation"
    default_path = "/access/v1/evaluation"
    return [
        Row("/token, Bearer", bridge_bearer, [oidc_bearer]),
        Row("/token, DPoP", bridge_dpop, [oidc_dpop]),
        Row(
            "/access/v1/evaluation, one permit",
            json_target("bridge", default_path, demo),
            [json_target("cedar", default_path, demo)],
        ),
        Row(
            f"todo interop mix ({len(todo)} requests)",
            json_target("bridge", todo_path, todo),
            [json_target("echo", "/echo", todo), json_target("cedar", todo_path, todo)],
        ),
        Row(
            f"default store, properties ({len(default)} requests)",
            json_target("bridge", default_path, default),
            [json_target("echo", "/echo", default), json_target("cedar", default_path, default)],
        ),
    ]


def check_all(http: httpx.Client, servers: Servers) -> None:
    for key in (None, ECKey.generate_key("P-256")):
        check_token_server(http, servers.bridge.url, METADATA_PATH, key)
        check_token_server(http, servers.oidc.url, "/.well-known/openid-configuration", key)
    todo, default = mixes.todo_interop(), mixes.default_with_properties()
    for base in (servers.bridge.url, servers.cedar.url):
        check_decisions(http, base + "/access/v1/evaluation", [Case(DEMO, True)])
        check_decisions(http, base + "/access/v1/evaluation", mixes.default_store())
        check_decisions(http, base + "/access/v1/evaluation", default)
        check_decisions(http, base + "/stores/todo/access/v1/evaluation", todo)
    check_echo(http, servers.echo.url + "/echo", todo + default)


def run_rounds(table: list[Row], args: argparse.Namespace, workdir: Path) -> None:
    """Every row measures the bridge and its peers once a round; every other round the peers
    go first, so that drift within a round favours neither side. Before the first round each
    server gets a run of its own to warm up (the JIT of the Node peers above all)."""
    for row in table:
        for target in [row.bridge, *row.peers]:
            measure(target, args, workdir, warmup=True)
    for number in range(1, args.rounds + 1):
        for row in table:
            order = [row.bridge, *row.peers]
            for target in order if number % 2 else reversed(order):
                measure(target, args, workdir)
            bridge = row.bridge.runs[-1].rate
            figures = [f"bridge {bridge:6.0f}"] + [
                f"{peer.label} {peer.runs[-1].rate:6.0f} ({bridge / peer.runs[-1].rate:.2f})"
                for peer in row.peers
            ]
            print(f"round {number}  {row.what:42} " + "  ".join(figures) + "  req/s", flush=True)


def load_average() -> str:
    """The machine's load, which other work on a shared machine adds to the figures'."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--latency-requests", type=int, default=200, help="per kind, for the DPoP latency"
    )
    args = parser.parse_args()
    if args.seconds > LONGEST_DPOP_RUN:
        parser.error(f"--seconds above {LONGEST_DPOP_RUN}: DPoP proofs would grow too old")
    started = time.monotonic()
    missing = [tool for tool in ("wrk",) if shutil.which(tool) is None] + node.missing_tools()
    if missing:
        print(f"not found on the PATH: {', '.join(missing)} (`make bench` installs wrk)")
        return 1
    if node.install():
        print(f"installed the peers' packages with npm ci ({time.monotonic() - started:.0f} s)")
    labels = {
        "oidc": f"node-oidc-provider {node.version(node.OIDC_PROVIDER)}",
        "cedar": f"cedar-wasm {node.version(node.CEDAR_WASM)}, Node {node.node_version()} http",
        "echo": "bare Starlette JSON echo",
    }
    print(load_average())
    print(
        f"bridge: cedarpy {python_version('cedarpy')}, Python {sys.version.split()[0]}; "
        + "; ".join(labels.values())
    )
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        ports = {name: free_port() for name in ("bridge", "echo", "oidc", "cedar")}
        stores = {"default": node.store("default"), "todo": node.store("todo")}
        config = bridge_config(workdir, ports["bridge"], stores)
        commands: dict[str, list[str]] = {
            "bridge": bridge_command(config, ports["bridge"]),
            "echo": echo_command(ports["echo"]),
            "oidc": node.oidc_provider_command(ports["oidc"], CLIENT_ID, CLIENT_SECRET, RESOURCE),
            "cedar": node.cedar_pdp_command(ports["cedar"], stores),
        }
        servers = Servers(
            **{
                name: stack.enter_context(started_server(command, ports[name]))
                for name, command in commands.items()
            }
        )
        with httpx.Client(timeout=10) as http:
            check_all(http, servers)
        print("checked: tokens, DPoP binding and decisions are right on every server")
        table = rows(servers)
        run_rounds(table, args, workdir)
        token_urls = {"bridge": servers.bridge.url + "/token", "oidc": servers.oidc.url + "/token"}
        latency = goals.dpop_latency_lines(token_urls, args.latency_requests)
    report(table, labels, args)
    print("\nGoals, from this run:")
    print("\n".join(goals.goal_lines(table)))
    print(
        f"\nToken latency, one connection, {args.latency_requests} requests of each kind, "
        "median (at 16 connections: the table's latency columns):"
    )
    print("\n".join(latency))
    print(f"\nwhole run: {time.monotonic() - started:.0f} s; {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
