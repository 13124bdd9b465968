"""Idempotent submission of deferred requests (shared/specs/access-request-oauth-profile.md §3):
the same requestable-denied request from the same client while its deferral is pending gets
the same deferral code back, with what the code has left of its lifetime, and files no second
access request; any other request, or the same one once the first code has ended, is new.

End to end over real HTTP (uvicorn on loopback, SQLite, Cedar with policies/default,
`interval_seconds = 1`, codes live 60 s), then the deferral service and its table directly
(`FakeClock`) for expiry, binding, the sealed code and the upgrade of an older table.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.deferral import DeferralService
from bridge.deferral.extension import request_identity
from bridge.store.sqlite import deferrals as table
from tests.dtr_fixtures import (
    PING_AGENT,
    Deferral,
    DTRServer,
    PingListener,
    assert_deferred,
    dtr_server,
    export_details,
    notification_token,
    payment_details,
    task_ids_about,
    unique_amount,
    unique_record,
)
from tests.oauth_fixtures import (
    CRM,
    DPoPKey,
    assert_oauth_error,
    exchange_form,
    idp_token,
    rar,
)
from tests.test_deferral_support import (
    KEK,
    FakeClock,
    approve,
    make_client,
    make_settings,
    open_store,
)
from tests.test_dtr_security import assert_nowhere_in_database

DEFERRAL = {"interval_seconds": 1, "code_lifetime_seconds": 60}


@pytest.fixture(scope="module")
def listener() -> Iterator[PingListener]:
    with PingListener() as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, listener: PingListener) -> Iterator[DTRServer]:
    folder = tmp_path_factory.mktemp("dtr-dedupe")
    with dtr_server(folder, deferral=DEFERRAL, ping_endpoint=listener.url) as running:
        yield running


def export_form(record: str, **extra: str) -> dict[str, str]:
    """Exporting `record` for alice, with a fresh subject token each time."""
    return {**exchange_form(export_details(record)), **extra}


def rows_of_tasks(server: DTRServer, task_ids: list[str]) -> list[dict[str, Any]]:
    """The deferral rows waiting on `task_ids`, read from outside the bridge."""
    marks = ", ".join("?" * len(task_ids))
    uri = f"file:{server.database}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute(
            "SELECT status, dedupe_key, code_sealed, notification_token_sealed "
            f"FROM deferrals WHERE task_id IN ({marks})",
            task_ids,
        ).fetchall()
    return [dict(row) for row in rows]


# -- the same request again ------------------------------------------------------------------


def test_the_same_request_again_gets_the_same_code_and_files_nothing(server: DTRServer) -> None:
    record = unique_record()
    first = server.defer(export_form(record))
    time.sleep(1.1)  # so that the code has visibly less left

    # The same request: a new subject token for the same user, the details' members in
    # another order and spaced differently (RFC 8785 makes them the same JSON).
    [entry] = export_details(record)
    reordered = json.dumps([{k: entry[k] for k in reversed(entry)}], indent=1)
    assert reordered != rar(export_details(record))
    again = server.defer({**export_form(record), "authorization_details": reordered})
    assert again.code == first.code
    assert again.interval == first.interval
    assert 1 <= again.expires_in <= first.expires_in - 1

    # One access request, for the manager, and the code works as before.
    request = server.find_request("manager-1", record)
    assert task_ids_about(server.database, record) == [request["id"]]
    assert_oauth_error(server.poll(first.code), "authorization_pending")

    # A third time, now that the code has been polled: still the same code.
    third = server.defer(export_form(record))
    assert third.code == first.code and third.expires_in <= again.expires_in
    assert len(server.requests_about("manager-1", record)) == 1

    # The code is now kept sealed (a repeat needs it), never in the clear; the dedupe key
    # is a keyed hash, and the sealed code goes once the deferral leaves pending.
    assert_nowhere_in_database(server, first.code)
    [row] = rows_of_tasks(server, [request["id"]])
    assert row["status"] == "pending" and row["code_sealed"] is not None
    assert len(row["dedupe_key"]) == 64
    assert row["dedupe_key"] != hashlib.sha256(first.code.encode()).hexdigest()

    server.approve("manager-1", request["id"])
    redeemed = server.poll_until_settled(third)
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json()["authorization_details"] == export_details(record)
    [row] = rows_of_tasks(server, [request["id"]])
    assert row == {
        "status": "redeemed",
        "dedupe_key": None,
        "code_sealed": None,
        "notification_token_sealed": None,
    }
    assert_nowhere_in_database(server, first.code)


def test_a_dpop_bound_request_again_with_the_same_key_gets_the_same_code(
    server: DTRServer,
) -> None:
    key = DPoPKey()
    record = unique_record()
    first = server.defer(export_form(record), client="demo-public", dpop=key.proof())
    again = server.defer(export_form(record), client="demo-public", dpop=key.proof())
    assert again.code == first.code
    assert len(server.requests_about("manager-1", record)) == 1
    # Still bound to the key.
    assert_oauth_error(
        server.poll(first.code, client="demo-public", key=DPoPKey()), "invalid_dpop_proof"
    )


def test_scope_and_resource_values_in_another_order_are_the_same_request(
    server: DTRServer,
) -> None:
    record = unique_record()
    resources = [CRM, "https://crm.example.com/exports"]

    def defer(scope: str, resource: list[str]) -> str:
        form: dict[str, str | list[str]] = {
            **export_form(record),
            "scope": scope,
            "resource": resource,
            "completion_mode": "deferred",
        }
        code: str = assert_deferred(server.oauth.token(form))["deferral_code"]
        return code

    first = defer("customer_records:read", resources)
    assert defer("customer_records:read customer_records:read", resources[::-1]) == first
    assert len(server.requests_about("manager-1", record)) == 1


# -- another request ---------------------------------------------------------------------------

Variant = Callable[[DTRServer, str], Deferral]


def agent(form: Callable[[str], dict[str, str]]) -> Variant:
    return lambda server, record: server.defer(form(record))


SAME_DPOP_KEY, OTHER_DPOP_KEY = DPoPKey(), DPoPKey()
VARIANTS: dict[str, Variant] = {
    "base": agent(export_form),
    # (`task_ids_about` finds this one's access request too: its id contains `record`.)
    "another location": agent(lambda record: export_form(record + "-other")),
    "another scope": agent(lambda record: export_form(record, scope="customer_records:read")),
    "another resource": agent(lambda record: export_form(record, resource=CRM)),
    "another user": agent(
        lambda record: {
            **exchange_form(export_details(record), subject_token=idp_token("bob@example.com"))
        }
    ),
    "another actor": agent(
        lambda record: exchange_form(export_details(record), actor_token=idp_token("agent-7"))
    ),
    "a DPoP key": lambda server, record: server.defer(
        export_form(record), dpop=SAME_DPOP_KEY.proof()
    ),
    "another client, same DPoP key": lambda server, record: server.defer(
        export_form(record), client="demo-public", dpop=SAME_DPOP_KEY.proof()
    ),
    "another DPoP key": lambda server, record: server.defer(
        export_form(record), client="demo-public", dpop=OTHER_DPOP_KEY.proof()
    ),
}


def test_every_other_request_gets_its_own_code_and_access_request(server: DTRServer) -> None:
    record = unique_record()
    codes = {name: variant(server, record).code for name, variant in VARIANTS.items()}
    assert len(set(codes.values())) == len(codes), codes
    assert len(task_ids_about(server.database, record)) == len(codes)

    # And each of them, asked again, is deduplicated against its own deferral.
    for name, variant in VARIANTS.items():
        assert variant(server, record).code == codes[name], name
    assert len(task_ids_about(server.database, record)) == len(codes)


# -- once the first code has ended -------------------------------------------------------------


def redeem(server: DTRServer, deferral: Deferral, task_id: str) -> None:
    server.approve("manager-1", task_id)
    response = server.poll_until_settled(deferral)
    assert response.status_code == 200, response.text


def deny(server: DTRServer, deferral: Deferral, task_id: str) -> None:
    response = server.decide("manager-1", task_id, "deny")
    assert response.status_code == 200, response.text
    assert_oauth_error(server.poll_until_settled(deferral), "access_denied")


def cancel(server: DTRServer, deferral: Deferral, task_id: str) -> None:
    assert server.revoke_code(deferral.code).status_code == 200
    assert_oauth_error(server.poll(deferral.code), "access_denied")


@pytest.mark.parametrize("end", [redeem, deny, cancel], ids=["redeemed", "denied", "cancelled"])
def test_once_the_code_has_ended_the_same_request_gets_a_new_code(
    server: DTRServer, end: Callable[[DTRServer, Deferral, str], None]
) -> None:
    record = unique_record()
    first = server.defer(export_form(record))
    [task_id] = task_ids_about(server.database, record)
    end(server, first, task_id)
    [row] = rows_of_tasks(server, [task_id])
    assert row["dedupe_key"] is None and row["code_sealed"] is None

    second = server.defer(export_form(record))
    assert second.code != first.code
    tasks = task_ids_about(server.database, record)
    assert len(tasks) == 2
    # The new one is what the same request finds from now on.
    assert server.defer(export_form(record)).code == second.code
    assert len(task_ids_about(server.database, record)) == 2
    assert_nowhere_in_database(server, first.code, second.code)


# -- notification tokens -----------------------------------------------------------------------


def test_a_repeat_keeps_the_first_notification_token_and_an_approved_code_is_not_repeated(
    server: DTRServer, listener: PingListener
) -> None:
    listener.reset()
    (amount, cents) = unique_amount()
    tokens = [notification_token(), notification_token()]

    def defer(token: str) -> Deferral:
        form = {**exchange_form(payment_details(amount)), "client_notification_token": token}
        return server.defer(form, client=PING_AGENT)

    first = defer(tokens[0])
    assert defer(tokens[1]).code == first.code  # the second token is ignored
    request = server.find_request("finance-1", cents)
    assert_nowhere_in_database(server, first.code, *tokens)

    server.approve("finance-1", request["id"])
    [delivery] = listener.wait_for(first.code, 1)
    assert delivery.headers["authorization"] == f"Bearer {tokens[0]}"

    # Approved but not collected: no longer pending, so the same request is a new one.
    third = defer(tokens[1])
    assert third.code != first.code
    assert server.find_request("finance-1", cents)["id"] != request["id"]
    assert len(task_ids_about(server.database, str(cents))) == 2
    redeemed = server.poll(first.code, client=PING_AGENT)
    assert redeemed.status_code == 200, redeemed.text
    assert_nowhere_in_database(server, first.code, third.code, *tokens)


# -- the service and the table, with a clock of their own --------------------------------------

REQUEST: dict[str, Any] = {
    "grant_type": "client_credentials",
    "principal": {"subject": {"type": "client", "id": "agent-1"}, "token_sub": "agent-1"},
    "details": [{"type": "customer_records", "actions": ["export"]}],
    "scope": [],
    "resource": [],
}
SNAPSHOT = {**REQUEST, "evaluations": [], "denied": [0]}


def key_of(service: DeferralService, client_id: str = "agent-1", jkt: str | None = None) -> str:
    identity = request_identity(client_id, jkt, REQUEST)
    assert identity is not None
    return service.request_key(identity)


def same(client_id: str = "agent-1", jkt: str | None = None) -> Callable[[dict[str, Any]], bool]:
    return lambda stored: (
        request_identity(client_id, jkt, stored) == request_identity(client_id, jkt, REQUEST)
    )


async def test_a_repeat_answers_the_time_left_until_the_last_whole_second(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    async with open_store(tmp_path / "bridge.sqlite3") as store:
        service = DeferralService(store, KEK, make_settings(), clock=clock)
        client, key = make_client(), key_of(service)
        body = await service.defer(client, None, SNAPSHOT, "task-1", None, None, dedupe_key=key)
        assert body["expires_in"] == 3600

        clock.advance(100.4)
        again = await service.repeat(client, None, key, same())
        assert again == {**body, "expires_in": 3499}
        clock.advance(3498.5)  # 1.1 s left
        assert (await service.repeat(client, None, key, same()) or {}).get("expires_in") == 1
        clock.advance(0.2)  # 0.9 s left: too little to hand out
        assert await service.repeat(client, None, key, same()) is None


async def test_a_repeat_needs_the_same_client_key_request_and_sealing_key(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    async with open_store(tmp_path / "bridge.sqlite3") as store:
        service = DeferralService(store, KEK, make_settings(), clock=clock)
        client, key = make_client(), key_of(service, jkt="jkt-1")
        body = await service.defer(client, "jkt-1", SNAPSHOT, "task-1", None, None, dedupe_key=key)
        assert await service.repeat(client, "jkt-1", key, same(jkt="jkt-1")) == body

        assert await service.repeat(make_client("agent-2"), "jkt-1", key, same(jkt="jkt-1")) is None
        assert await service.repeat(client, None, key, same()) is None
        assert await service.repeat(client, "jkt-2", key, same(jkt="jkt-2")) is None
        # A stored deferral whose snapshot is not this request is not handed out.
        assert await service.repeat(client, "jkt-1", key, lambda stored: False) is None
        # Another key-encryption key: the key is not found, and a sealed code not opened.
        other = DeferralService(store, bytes(32), make_settings(), clock=clock)
        assert await other.repeat(client, "jkt-1", key_of(other, jkt="jkt-1"), same()) is None
        assert await other.repeat(client, "jkt-1", key, same(jkt="jkt-1")) is None
        # Without a dedupe key (the earlier way) there is nothing to find.
        await service.defer(client, None, SNAPSHOT, "task-2", None, None)
        assert await service.repeat(client, None, key_of(service), same()) is None


async def test_the_key_and_the_sealed_code_go_when_the_deferral_leaves_pending(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    async with open_store(tmp_path / "bridge.sqlite3") as store:
        service = DeferralService(store, KEK, make_settings(), clock=clock)
        client = make_client()
        ends = {
            "task-resolved": lambda code: service.resolve_task("task-resolved", approve()),
            "task-cancelled": lambda code: service.cancel(client, code, None),
        }
        for task, end in ends.items():
            request = {**REQUEST, "details": [{"type": "customer_records", "identifier": task}]}
            identity = request_identity("agent-1", None, request)
            assert identity is not None
            key = service.request_key(identity)
            body = await service.defer(client, None, request, task, None, None, dedupe_key=key)
            code_hash = service._keys.code_hash(body["deferral_code"])
            record = await store.deferral_find(code_hash)
            assert record is not None and record.dedupe_key == key
            assert record.code_sealed is not None  # no notification endpoint, sealed anyway
            await end(body["deferral_code"])
            record = await store.deferral_find(code_hash)
            assert record is not None and record.status != table.PENDING
            assert record.dedupe_key is None and record.code_sealed is None
            assert await service.repeat(client, None, key, lambda stored: True) is None

        key = key_of(service)
        body = await service.defer(
            client, None, SNAPSHOT, "task-expired", None, None, dedupe_key=key
        )
        clock.advance(3600)
        assert "task-expired" in await service.expire_due()
        record = await store.deferral_find(service._keys.code_hash(body["deferral_code"]))
        assert record is not None and record.status == table.EXPIRED
        assert record.dedupe_key is None and record.code_sealed is None


def test_the_request_identity_is_canonical_json_or_nothing() -> None:
    identity = request_identity("agent-1", None, REQUEST)
    reordered = {k: REQUEST[k] for k in reversed(REQUEST)}
    assert identity is not None and request_identity("agent-1", None, reordered) == identity
    assert request_identity("agent-2", None, REQUEST) != identity
    assert request_identity("agent-1", "jkt", REQUEST) != identity
    # No RFC 8785 form (an integer beyond 2^53): never deduplicated, but still deferred.
    huge = {**REQUEST, "details": [{"type": "customer_records", "n": 2**60}]}
    assert request_identity("agent-1", None, huge) is None


# -- the table of an earlier version ---------------------------------------------------------

OLD_SCHEMA = [
    """CREATE TABLE deferrals (
        id INTEGER PRIMARY KEY, code_hash TEXT NOT NULL UNIQUE, client_id TEXT NOT NULL,
        jkt TEXT, snapshot_json TEXT NOT NULL, task_id TEXT, status TEXT NOT NULL,
        created_at REAL NOT NULL, expires_at REAL NOT NULL, interval INTEGER NOT NULL,
        required_gap REAL NOT NULL, last_poll_at REAL,
        slow_down_count INTEGER NOT NULL DEFAULT 0, notification_endpoint TEXT,
        code_sealed BLOB, notification_token_sealed BLOB, resolution_json TEXT,
        resolved_at REAL)""",
    "CREATE INDEX deferrals_task ON deferrals (task_id, status)",
    "CREATE INDEX deferrals_due ON deferrals (status, expires_at)",
]


async def test_a_table_of_the_previous_version_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "bridge.sqlite3"
    now = time.time()
    with contextlib.closing(sqlite3.connect(path)) as db:
        for statement in OLD_SCHEMA:
            db.execute(statement)
        db.executemany(
            "INSERT INTO deferrals (code_hash, client_id, snapshot_json, task_id, status, "
            "created_at, expires_at, interval, required_gap) "
            "VALUES (?, 'agent-1', '{}', ?, 'pending', ?, ?, 5, 5)",
            ((f"h-{n}", f"task-{n}", now, now + 3600 + n) for n in range(20_000)),
        )
        db.commit()

    for _ in range(2):  # and opening it again changes nothing
        async with open_store(path) as store:
            old = await store.deferral_find("h-7")
            assert old is not None and old.task_id == "task-7" and old.dedupe_key is None
            service = DeferralService(store, KEK, make_settings())
            client, key = make_client(), key_of(service)
            assert await service.repeat(client, None, key, same()) is None
            body = await service.defer(
                client, None, SNAPSHOT, "task-new", None, None, dedupe_key=key
            )
            again = await service.repeat(client, None, key, same())
            assert again is not None and again["deferral_code"] == body["deferral_code"]
            await service.cancel(client, body["deferral_code"], None)

    with contextlib.closing(sqlite3.connect(path)) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(deferrals)")]
        assert columns.count("dedupe_key") == 1
        indexes = {row[1] for row in db.execute("PRAGMA index_list(deferrals)")}
        assert "deferrals_dedupe" in indexes
        args = ("k" * 64, table.PENDING, now, "agent-1")
        plan = " / ".join(
            row[3] for row in db.execute("EXPLAIN QUERY PLAN " + table.SELECT_PENDING_BY_KEY, args)
        )
        assert "deferrals_dedupe" in plan and "SCAN" not in plan, plan
