"""The deferral table itself: nothing secret in a database dump, the keyed lookup hash and
sealing, and index-only lookups with 100,000 pending deferrals."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

import pytest

from bridge.deferral import DeferralKeys, DeferralService
from bridge.deferral.codes import SealError
from bridge.store.sqlite import deferrals as table
from tests.test_deferral_support import (
    KEK,
    SNAPSHOT,
    FakeClock,
    approve,
    make_client,
    make_settings,
    open_store,
)

ENDPOINT = "https://client.example.com/cb"


async def test_a_database_dump_holds_no_code_and_no_notification_token(tmp_path: Path) -> None:
    path = tmp_path / "bridge.sqlite3"
    client = make_client("agent-1", ENDPOINT)
    secrets: list[str] = []
    async with open_store(path) as store:
        service = DeferralService(store, KEK, make_settings(), clock=FakeClock())
        codes = []
        for n in range(6):
            token = f"notification-token-{n}-5SIVTd4ZzzGctFQr4AqOGdCgyIa40tCepd0AcZxFY"
            body = await service.defer(client, None, SNAPSHOT, f"task-{n}", None, token)
            codes.append(body["deferral_code"])
            secrets += [body["deferral_code"], token]
        await service.resolve_task("task-0", approve())  # ping queued: code + token in the outbox
        await service.resolve_task("task-1", approve())
        await service.cancel(client, codes[2], None)
        # 3, 4, 5 stay pending: their code and token are kept, sealed, for a later ping.
        counts = await store.outbox_counts()
        assert counts == {"pending": 2}

        raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
        for secret in secrets:
            assert secret.encode() not in raw
        for code in codes:  # nor an unkeyed hash of a code (which a guess could be checked by)
            assert hashlib.sha256(code.encode()).hexdigest().encode() not in raw

        with sqlite3.connect(path) as db:
            dumped = "\n".join(db.iterdump())
        for secret in secrets:
            assert secret not in dumped
        assert "deferrals" in dumped and "outbox" in dumped  # the dump did see the tables


async def test_secrets_are_dropped_when_a_deferral_leaves_pending(tmp_path: Path) -> None:
    async with open_store(tmp_path / "bridge.sqlite3") as store:
        service = DeferralService(store, KEK, make_settings(), clock=FakeClock())
        client = make_client("agent-1", ENDPOINT)
        body = await service.defer(client, None, SNAPSHOT, "task-1", None, "token-abc")
        code_hash = service._keys.code_hash(body["deferral_code"])
        record = await store.deferral_find(code_hash)
        assert record is not None
        assert record.code_sealed is not None and record.notification_token_sealed is not None
        await service.resolve_task("task-1", approve())
        record = await store.deferral_find(code_hash)
        assert record is not None and record.status == table.RESOLVED_OK
        assert record.code_sealed is None and record.notification_token_sealed is None


async def test_no_sealed_code_without_a_notification_endpoint(tmp_path: Path) -> None:
    async with open_store(tmp_path / "bridge.sqlite3") as store:
        service = DeferralService(store, KEK, make_settings(), clock=FakeClock())
        body = await service.defer(make_client(), None, SNAPSHOT, "task-1", None, "token-abc")
        record = await store.deferral_find(service._keys.code_hash(body["deferral_code"]))
        assert record is not None
        assert record.code_sealed is None and record.notification_token_sealed is None
        await service.resolve_task("task-1", approve())
        assert await store.outbox_counts() == {}  # no endpoint: no ping


def test_the_lookup_hash_is_keyed_and_sealing_is_bound_to_its_row() -> None:
    keys, other = DeferralKeys(KEK), DeferralKeys(bytes(32))
    code = "LRGidcSAeVs_xYpEDt5pNx0A0TBr7qPHbh_Se6pfdf4"
    assert keys.code_hash(code) == keys.code_hash(code)
    assert keys.code_hash(code) != other.code_hash(code)
    assert keys.code_hash(code) != hashlib.sha256(code.encode()).hexdigest()
    sealed = keys.seal_code("row-1", code)
    assert code.encode() not in sealed
    assert keys.unseal_code("row-1", sealed) == code
    with pytest.raises(SealError):
        keys.unseal_code("row-2", sealed)  # moved to another row
    with pytest.raises(SealError):
        other.unseal_code("row-1", sealed)  # another key
    with pytest.raises(SealError):
        keys.unseal_code("row-1", sealed[:-1] + bytes([sealed[-1] ^ 1]))
    with pytest.raises(ValueError):
        DeferralKeys(b"short")


STATEMENTS = {
    "by code": (table.SELECT_BY_CODE, ("h-77777",)),
    "pending of task": (table.SELECT_PENDING_OF_TASK, ("task-77777", table.PENDING)),
    "live of task": (table.SELECT_LIVE_OF_TASK, ("task-77777", *table.LIVE)),
    "due": (table.SELECT_DUE, (*table.LIVE, 1.0, 100)),
    "purge": (table.DELETE_OLD, (*table.FINAL, 1.0)),
}


async def test_lookups_use_indexes_with_100000_pending_deferrals(tmp_path: Path) -> None:
    path = tmp_path / "bridge.sqlite3"
    now = time.time()
    async with open_store(path) as store:
        with sqlite3.connect(path) as db:
            db.executemany(
                "INSERT INTO deferrals (code_hash, client_id, snapshot_json, task_id, status, "
                "created_at, expires_at, interval, required_gap) "
                "VALUES (?, 'agent-1', '{}', ?, 'pending', ?, ?, 5, 5)",
                ((f"h-{n}", f"task-{n}", now, now + 3600 + n) for n in range(100_000)),
            )
            for name, (sql, args) in STATEMENTS.items():
                plan = " / ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, args))
                assert "SCAN" not in plan, f"{name}: {plan}"
                assert "INDEX" in plan, f"{name}: {plan}"
        # And the operations work on the big table.
        record = await store.deferral_find("h-77777")
        assert record is not None and record.task_id == "task-77777"
        assert [r.code_hash for r in await store.deferrals_pending_of_task("task-5")] == ["h-5"]
        assert await store.deferral_cancel("h-5", now) == (True, "task-5")
        assert await store.deferrals_expire(now + 3610, limit=1000, purge_before=0) == (
            10,
            sorted(f"task-{n}" for n in range(11) if n != 5),
        )
