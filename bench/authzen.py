"""AuthZEN benchmark: every figure is a ratio measured side by side in one run.

1. HTTP throughput of `/access/v1/evaluation` against a bare Starlette JSON echo endpoint,
   both under uvicorn with the same settings, driven by wrk in alternating rounds.
2. Per-item cost of a 100-item `/access/v1/evaluations` batch against a single evaluation.
3. In-process decision cost with 10, 100 and 1,000 policies of which all but one cannot
   apply (with the policy index, and for contrast Cedar over the whole set).
4. Resource search over 10,000 resources (in process and over HTTP).

Usage: python -m bench.authzen [--seconds 5] [--rounds 3] [--connections 16]
Needs `wrk` on the PATH for the HTTP figures (`make bench` installs it where it can).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cedarpy
import httpx

from bench.harness import (
    REPO,
    alternate,
    bridge_command,
    echo_command,
    free_port,
    server,
    wrk,
)
from bench.stores import VIEW, write_store
from bridge.authzen.cedar.engine import CedarPDP
from bridge.authzen.cedar.reload import StoreHolder
from bridge.authzen.cedar.store import PolicyStore, load_store
from bridge.authzen.models import EvaluationRequest, ResourceSearchRequest
from bridge.authzen.pagination import Paginator

DEMO = {
    "subject": {"type": "client", "id": "demo-agent"},
    "action": {"name": "read"},
    "resource": {"type": "CustomerRecord", "id": "42"},
}


def http_figures(args: argparse.Namespace, workdir: Path) -> None:
    big = write_store(workdir / "big", policies=10, documents=10_000)
    config = workdir / "bridge.toml"
    config.write_text(
        '[server]\nlog_level = "warning"\naccess_log = false\n\n[reload]\nenabled = false\n\n'
        f'[stores.default]\npath = "{REPO / "policies" / "default"}"\n\n'
        f'[stores.big]\npath = "{big}"\n'
    )
    bridge_port, echo_port = free_port(), free_port()
    batch = {
        "subject": DEMO["subject"],
        "action": DEMO["action"],
        "evaluations": [{"resource": {"type": "CustomerRecord", "id": str(n)}} for n in range(100)],
    }
    search = {
        "subject": {"type": "user", "id": "alice"},
        "action": {"name": "view"},
        "resource": {"type": "document"},
    }
    with (
        server(bridge_command(config, bridge_port), bridge_port) as bridge,
        server(echo_command(echo_port), echo_port) as echo,
    ):
        evaluation = f"{bridge}/access/v1/evaluation"
        evaluations = f"{bridge}/access/v1/evaluations"
        searching = f"{bridge}/stores/big/access/v1/search/resource"
        # Benchmark only what is right: a permit, 100 permits, 1,000 search results.
        assert httpx.post(evaluation, json=DEMO).json() == {"decision": True}
        assert all(d["decision"] for d in httpx.post(evaluations, json=batch).json()["evaluations"])
        found = httpx.post(searching, json=search, timeout=30).json()["results"]
        assert len(found) == 1000, len(found)

        def run(url: str, body: object, connections: int = args.connections) -> Callable[[], float]:
            return lambda: wrk(url, body, args.seconds, connections, workdir)

        rates = alternate(
            args.rounds,
            {
                "echo": run(f"{echo}/echo", DEMO),
                "evaluation": run(evaluation, DEMO),
                "evaluations": run(evaluations, batch),
            },
        )
        search_rate = wrk(searching, search, args.seconds, 1, workdir)

    ratio = rates["evaluation"] / rates["echo"]
    per_item = rates["evaluation"] / (rates["evaluations"] * 100)
    print(f"echo endpoint (bare Starlette)        {rates['echo']:10.0f} req/s")
    print(f"/access/v1/evaluation                 {rates['evaluation']:10.0f} req/s")
    print(f"  ratio to echo                       {ratio:10.2f}   (target >= 0.60)")
    print(f"/access/v1/evaluations, 100 items     {rates['evaluations']:10.0f} req/s")
    print(f"  per-item cost / single call         {per_item:10.3f}   (target <= 0.25)")
    print(f"resource search, 10,000 resources     {1000 / search_rate:10.1f} ms over HTTP")


# VIEW as the engine hands it to Cedar, for deciding over the whole policy set.
CEDAR_VIEW = {
    "principal": {"type": "user", "id": "alice"},
    "action": {"type": "Action", "id": "view"},
    "resource": {"type": "document", "id": "doc-3"},
    "context": {"action_properties": {}},
}


def in_process_figures(workdir: Path) -> None:
    request = EvaluationRequest.model_validate(VIEW)
    paginator = Paginator(None, 1000)
    costs: dict[int, tuple[float, float]] = {}
    for count in (10, 100, 1000):
        store = load_store("bench", write_store(workdir / f"p{count}", policies=count))
        pdp = CedarPDP(StoreHolder(store), paginator, explanations=False)
        assert asyncio.run(pdp.evaluate(request)).decision is True
        indexed = _per_call(partial(_indexed, pdp, request), 200)
        whole = _per_call(partial(_whole_set, store), 200)
        costs[count] = (indexed, whole)
        print(
            f"decision, {count:5d} policies            {indexed * 1e6:8.1f} us with the index"
            f"   ({whole * 1e6:8.1f} us Cedar over all policies)"
        )
    growth = costs[1000][0] / costs[10][0]
    print(f"  1,000 / 10 policies                 {growth:10.2f}   (target <= 2.00)")

    big = load_store("big", write_store(workdir / "search", policies=10, documents=10_000))
    pdp = CedarPDP(StoreHolder(big), paginator, explanations=False)
    search = ResourceSearchRequest.model_validate(
        {
            "subject": {"type": "user", "id": "alice"},
            "action": {"name": "view"},
            "resource": {"type": "document"},
        }
    )
    seconds = _per_call(lambda: asyncio.run(pdp.search_resource(search)), 1, repeat=5)
    print(f"resource search, 10,000 resources     {seconds * 1000:10.1f} ms in process")


def _indexed(pdp: CedarPDP, request: EvaluationRequest) -> None:
    asyncio.run(_many(pdp, request, 200))


def _whole_set(store: PolicyStore) -> None:
    for _ in range(200):
        cedarpy.is_authorized(CEDAR_VIEW, store.policy_set, store.entities.handle)


async def _many(pdp: CedarPDP, request: EvaluationRequest, n: int) -> None:
    for _ in range(n):
        await pdp.evaluate(request)


def _per_call(run: Callable[[], object], calls: int, repeat: int = 7) -> float:
    """Best of `repeat` timings of `run`, per call: the least disturbed by other load."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        in_process_figures(workdir)
        if shutil.which("wrk"):
            http_figures(args, workdir)
        else:
            print("wrk not found: HTTP figures skipped (install wrk, or run `make bench`)")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
