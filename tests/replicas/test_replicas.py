"""Three replicas (`bridge serve` processes a, b and c) on one PostgreSQL database, over real
HTTP on loopback: whatever one replica records, the others act on, and what must happen once
happens once, whichever replicas the requests reach.

- started together on an empty database: one schema, one signing key, every `/readyz` ready;
- a deferral filed on a, approved on b, polled on c: one token, and the code is spent
  everywhere;
- 20 polls of an approved code spread over the replicas: exactly one token;
- a ping raced by the three outbox workers: each delivered exactly once;
- a rotated refresh token presented at another replica revokes the family everywhere;
- a DPoP proof used at one replica is refused at another;
- `bridge keys rotate` against the shared database: every `/jwks` serves the new key at once
  and every replica signs with it within the documented bound (the signing key cache, 2 s).

The demo policies let manager-1 approve exports of customer records and finance-1 EUR
payments of 1,000.01 to 100,000.00; the approvers' tokens come from the demo approver issuer.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import jwt as pyjwt
import pytest

from tests.conftest import REPO
from tests.dtr_fixtures import (
    DEFERRED_GRANT,
    PING_AGENT,
    Deferral,
    PingListener,
    export_details,
    notification_token,
    payment_details,
    unique_amount,
    unique_record,
)
from tests.oauth_fixtures import (
    DPoPKey,
    assert_oauth_error,
    basic_header,
    exchange_form,
    idp_token,
    read_details,
)
from tests.replicas.cluster import Cluster, Replica, cluster, wait_for
from tests.support.postgres import PostgresDatabase

pytest_plugins = ["tests.support.plugin"]

SIGNING_KEY_CACHE_SECONDS = 2.0  # bridge.jose.signing_keys.SigningKeys(cache_seconds=...)


@pytest.fixture(scope="module")
def listener() -> Iterator[PingListener]:
    with PingListener() as running:
        yield running


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_database: PostgresDatabase,
    listener: PingListener,
) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("replicas"), postgres_database, listener.url) as running:
        yield running


def defer_export(replica: Replica, record: str) -> Deferral:
    """demo-agent, for alice, exports a customer record: deferred until manager-1 approves."""
    return replica.dtr.defer(exchange_form(export_details(record)))


def approve_export(replica: Replica, record: str) -> str:
    request = replica.dtr.find_request("manager-1", record)
    replica.dtr.approve("manager-1", request["id"])
    return str(request["id"])


def test_started_together_on_an_empty_database(replicas: Cluster) -> None:
    assert replicas.rows("SELECT version FROM schema_version ORDER BY version") == [
        (1,),
        (2,),
        (3,),
        (4,),
    ]
    keys = replicas.rows("SELECT kid, retired_at FROM signing_keys")
    assert len(keys) == 1 and keys[0][1] is None  # one key made between the three
    for replica in replicas.replicas:
        assert [k["kid"] for k in replica.oauth.jwks()["keys"]] == [keys[0][0]]
        ready = replica.http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["database"] == {"ready": True}


def test_filed_on_one_approved_on_another_polled_on_a_third(replicas: Cluster) -> None:
    a, b, c = replicas["a"], replicas["b"], replicas["c"]
    record = unique_record()
    deferral = defer_export(a, record)
    assert_oauth_error(c.dtr.poll(deferral.code), "authorization_pending")
    approve_export(b, record)
    issued = c.dtr.poll_until_settled(deferral)
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert body["authorization_details"] == export_details(record)
    # Signed with the shared key: every replica's key set verifies it.
    for replica in replicas.replicas:
        assert replica.oauth.verify(body["access_token"])[1]["sub"] == "alice@example.com"
    assert replicas.deferral_status(deferral.code) == "redeemed"
    for replica in (a, b, c):
        assert_oauth_error(replica.dtr.poll(deferral.code), "invalid_grant")


async def test_twenty_polls_spread_over_the_replicas_issue_one_token(replicas: Cluster) -> None:
    record = unique_record()
    deferral = defer_export(replicas["a"], record)
    approve_export(replicas["c"], record)
    wait_for(
        "the deferral to be resolved", lambda: replicas.deferral_status(deferral.code) != "pending"
    )
    assert replicas.deferral_status(deferral.code) == "resolved_ok"
    form = {"grant_type": DEFERRED_GRANT, "deferral_code": deferral.code}
    limits = httpx.Limits(max_connections=30)
    async with httpx.AsyncClient(timeout=20, limits=limits) as http:
        responses = await asyncio.gather(
            *(
                http.post(replica.url + "/token", data=form, headers=basic_header("demo-agent"))
                for replica in itertools.islice(itertools.cycle(replicas.replicas), 20)
            )
        )
    tokens = [r for r in responses if r.status_code == 200]
    assert len(tokens) == 1, [r.text for r in responses]
    refused = [r.json()["error"] for r in responses if r.status_code != 200]
    assert refused == ["invalid_grant"] * 19
    assert replicas.deferral_status(deferral.code) == "redeemed"


def test_a_ping_raced_by_the_replicas_is_delivered_once(
    replicas: Cluster, listener: PingListener
) -> None:
    listener.reset()
    deferrals = []
    for n in range(6):
        (amount, cents), token = unique_amount(), notification_token()
        filer = replicas.replicas[n % 3]
        form = {**exchange_form(payment_details(amount)), "client_notification_token": token}
        deferrals.append((filer.dtr.defer(form, client=PING_AGENT), cents, token))
    for n, (_, cents, _) in enumerate(deferrals):
        approver = replicas.replicas[(n + 1) % 3]
        request = approver.dtr.find_request("finance-1", cents)
        approver.dtr.approve("finance-1", request["id"])
    for deferral, _, token in deferrals:
        (delivery,) = listener.wait_for(deferral.code, 1)
        assert delivery.headers["authorization"] == f"Bearer {token}"
    wait_for(
        "the outbox to drain",
        lambda: replicas.rows("SELECT COUNT(*) FROM outbox WHERE status = 'pending'") == [(0,)],
    )
    time.sleep(1.0)  # a second worker's copy would have arrived by now
    for deferral, _, _ in deferrals:
        assert len(listener.for_code(deferral.code)) == 1
    assert len(listener.deliveries) == len(deferrals)


def test_refresh_token_reuse_at_another_replica_revokes_the_family(replicas: Cluster) -> None:
    a, b, c = replicas["a"], replicas["b"], replicas["c"]
    first = a.oauth.issued(exchange_form(read_details("c-1"), subject_token=idp_token()))
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    second = b.oauth.issued(refresh)
    # The first token again, at the third replica: it has leaked, the grant is over.
    assert_oauth_error(c.oauth.token(refresh), "invalid_grant")
    again = {"grant_type": "refresh_token", "refresh_token": second["refresh_token"]}
    for replica in (a, b):
        assert_oauth_error(replica.oauth.token(again), "invalid_grant")
    assert a.oauth.introspect(second["refresh_token"], client="demo-agent") == {"active": False}


def test_a_dpop_proof_used_at_one_replica_is_refused_at_another(replicas: Cluster) -> None:
    key = DPoPKey()
    proof = key.proof()
    form = exchange_form(read_details("c-1"))
    issued = replicas["a"].oauth.issued(form, client="demo-public", dpop=proof)
    assert issued["token_type"] == "DPoP"
    for replica in (replicas["b"], replicas["c"], replicas["a"]):
        refused = replica.oauth.token(
            exchange_form(read_details("c-1")), client="demo-public", dpop=proof
        )
        body = assert_oauth_error(refused, "invalid_dpop_proof")
        assert "already used" in body["error_description"]
    # A fresh proof of the same key is fine anywhere.
    replicas["b"].oauth.issued(form, client="demo-public", dpop=key.proof())


def test_a_key_rotated_through_the_shared_database_reaches_every_replica(
    replicas: Cluster,
) -> None:
    before = {k["kid"] for k in replicas["a"].oauth.jwks()["keys"]}
    rotated = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "keys", "rotate", "--config", str(replicas.config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rotated.returncode == 0, rotated.stderr
    new_kid = rotated.stdout.split("new signing key ", 1)[1].split(";", 1)[0]
    assert new_kid not in before
    # Every /jwks reads the database: the new key is published everywhere at once, beside
    # the old one (which stays until the tokens it signed have expired).
    for replica in replicas.replicas:
        assert {k["kid"] for k in replica.oauth.jwks()["keys"]} == before | {new_kid}
    # Every replica signs with it once its signing key cache has turned over.
    deadline = time.monotonic() + SIGNING_KEY_CACHE_SECONDS + 10
    pending = {replica.name: replica for replica in replicas.replicas}
    while pending:
        assert time.monotonic() < deadline, f"{sorted(pending)} still sign with the old key"
        for replica in list(pending.values()):
            token = replica.oauth.issued(exchange_form(read_details("c-1")))["access_token"]
            if pyjwt.get_unverified_header(token)["kid"] == new_kid:
                # ... and the others' key sets verify what it signed.
                for other in replicas.replicas:
                    assert other.oauth.verify(token)[0]["kid"] == new_kid
                del pending[replica.name]
        time.sleep(0.2)
    retired = replicas.rows("SELECT kid FROM signing_keys WHERE retired_at IS NOT NULL")
    assert {kid for (kid,) in retired} == before


def test_no_replica_left_an_error_in_its_log(replicas: Cluster) -> None:
    for replica in replicas.replicas:
        log = (replicas.folder / f"{replica.name}.log").read_text()
        assert "Traceback" not in log, log
        assert " ERROR " not in log, log
