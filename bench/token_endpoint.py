"""Token endpoint benchmark: throughput as a ratio to a bare echo endpoint, in one run.

1. HTTP throughput of `POST /token` (client_credentials, `client_secret_basic`, one
   `customer_records` read on one location, embedded Cedar, ES256 access tokens) against
   the bare Starlette JSON echo endpoint, both under uvicorn with the same settings, driven
   by wrk in alternating rounds; the medians are compared.
2. Latency of a DPoP-bound token request beside the same request without DPoP. Every DPoP
   proof needs a fresh `jti` and its own signature, which a wrk script cannot make, so this
   is a sequential Python loop over one keep-alive connection: the proofs are signed before
   the clock starts, and the two kinds of request alternate.

Usage: python -m bench.token_endpoint [--seconds 5] [--rounds 3] [--connections 16] [--requests 300]
Needs `wrk` on the PATH (`make bench` installs it where it can).
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import httpx
from joserfc import jws
from joserfc.jwk import ECKey

from bench.authzen import DEMO
from bench.harness import (
    alternate,
    bridge_command,
    bridge_config,
    echo_command,
    free_port,
    server,
    wrk,
    wrk_post,
)

CLIENT_ID, CLIENT_SECRET = "demo-agent", "demo-agent-secret"
BASIC = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
DETAILS = [
    {
        "type": "customer_records",
        "actions": ["read"],
        "locations": ["https://crm.example.com/customers/cust-0001"],
    }
]
FORM = {"grant_type": "client_credentials", "authorization_details": json.dumps(DETAILS)}
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


def wrk_form(
    url: str, form: dict[str, str], seconds: float, connections: int, workdir: Path
) -> float:
    """Requests per second for POSTing `form` with HTTP Basic client authentication."""
    headers = {"Content-Type": FORM_MEDIA_TYPE, "Authorization": BASIC}
    return wrk_post(url, urlencode(form), headers, seconds, connections, workdir)


def token_request(http: httpx.Client, url: str, proof: str | None = None) -> httpx.Response:
    headers = {"Authorization": BASIC}
    if proof is not None:
        headers["DPoP"] = proof
    return http.post(url, data=FORM, headers=headers)


def dpop_proof(key: ECKey, url: str) -> str:
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
    claims = {"jti": str(uuid.uuid4()), "htm": "POST", "htu": url, "iat": int(time.time())}
    return jws.serialize_compact(header, json.dumps(claims), key)


def check_token(response: httpx.Response, token_type: str) -> None:
    """Benchmark only what is right: a token of the expected kind, for what was asked."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == token_type, body
    assert body["authorization_details"] == DETAILS, body
    assert body["access_token"].count(".") == 2, body


def latencies(url: str, requests: int) -> tuple[float, float]:
    """Median seconds per token request without and with a DPoP proof, alternating."""
    key = ECKey.generate_key("P-256")
    plain: list[float] = []
    bound: list[float] = []
    with httpx.Client(timeout=10) as http:
        check_token(token_request(http, url, dpop_proof(key, url)), "DPoP")
        # Signed before timing; well within the server's `iat` leeway (60 s by default).
        proofs = [dpop_proof(key, url) for _ in range(requests)]
        for proof in proofs:
            for samples, sent in ((plain, None), (bound, proof)):
                start = time.perf_counter()
                response = token_request(http, url, sent)
                samples.append(time.perf_counter() - start)
                assert response.status_code == 200, response.text
    return statistics.median(plain), statistics.median(bound)


def http_figures(args: argparse.Namespace, workdir: Path) -> None:
    bridge_port, echo_port = free_port(), free_port()
    config = bridge_config(workdir, bridge_port)
    with (
        server(bridge_command(config, bridge_port), bridge_port) as bridge,
        server(echo_command(echo_port), echo_port) as echo,
    ):
        token = f"{bridge}/token"
        with httpx.Client(timeout=10) as http:
            check_token(token_request(http, token), "Bearer")

        def run(measure: Callable[..., float], url: str, body: object) -> Callable[[], float]:
            return lambda: measure(url, body, args.seconds, args.connections, workdir)

        rates = alternate(
            args.rounds,
            {"echo": run(wrk, f"{echo}/echo", DEMO), "token": run(wrk_form, token, FORM)},
        )
        plain, bound = latencies(token, args.requests)

    ratio = rates["token"] / rates["echo"]
    print(f"echo endpoint (bare Starlette)        {rates['echo']:10.0f} req/s")
    print(f"/token, client_credentials + RAR      {rates['token']:10.0f} req/s")
    print(f"  ratio to echo                       {ratio:10.2f}   (target >= 0.40)")
    print(f"/token latency, one connection        {plain * 1000:10.2f} ms Bearer")
    print(f"  the same with a DPoP proof          {bound * 1000:10.2f} ms DPoP-bound")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--requests", type=int, default=300, help="per kind, for latency")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk not found: install wrk, or run `make bench`")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        http_figures(args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
