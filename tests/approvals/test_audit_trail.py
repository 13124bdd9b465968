"""The audit trail: every event of an access request is written with the change, in a
hash chain that `bridge audit verify` checks, and that `bridge audit export` writes as JSON
lines. Each kind of tampering with the database (an entry edited, edited and re-hashed,
inserted, removed in the middle, cut off the end) makes `verify` fail and say where."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.store.contract import entry_hash
from tests.approvals.helpers import approvals_server, audit, bridge, export_for, person, request_of
from tests.dtr_fixtures import DTRServer, unique_record


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DTRServer]:
    with approvals_server(tmp_path_factory.mktemp("audit")) as running:
        # Something to audit: one request approved and redeemed, one denied.
        for decision in ("approve", "deny"):
            who = person()
            deferral = running.defer(export_for(who, unique_record()))
            task = request_of(running, "manager-1", who)
            assert task is not None
            answer = running.decide("manager-1", task["id"], decision, justification="ok")
            assert answer.status_code == 200, answer.text
            running.poll_until_settled(deferral)
        yield running


def test_every_event_of_a_request_is_in_the_trail(server: DTRServer) -> None:
    entries = audit(server)
    by_task: dict[str, list[str]] = {}
    for entry in entries:
        by_task.setdefault(entry["task_id"], []).append(entry["event"])
    trails = sorted(by_task.values())
    assert ["filed", "denied"] in trails
    approved = next(t for t in trails if "approved" in t)
    assert approved[:2] == ["filed", "approved"] and "reevaluated" in approved
    filed = next(e for e in entries if e["event"] == "filed")
    assert filed["actor"] == "client:demo-agent"
    assert filed["data"]["policy_version"].startswith("sha256:")
    assert filed["data"]["items"][0]["template"] == "manager"
    decided = next(e for e in entries if e["event"] in ("approved", "denied"))
    assert json.loads(decided["actor"])[1:] == ["user", "manager-1"]
    assert decided["data"]["justification"] == "ok"
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))


def test_an_untouched_trail_verifies(server: DTRServer) -> None:
    done = bridge("audit", "verify", config=server.oauth.config)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("the audit trail is intact: ")


def test_export_since_a_time_writes_the_later_entries(server: DTRServer) -> None:
    entries = audit(server)
    middle = entries[len(entries) // 2]
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(middle["at"]) + 1))
    done = bridge("audit", "export", "--since", since, config=server.oauth.config)
    assert done.returncode == 0, done.stderr
    later = [json.loads(line) for line in done.stdout.splitlines()]
    assert all(e["at"] >= int(middle["at"]) + 1 for e in later)
    assert len(later) == len([e for e in entries if e["at"] >= int(middle["at"]) + 1])
    wrong = bridge("audit", "export", "--since", "yesterday", config=server.oauth.config)
    assert wrong.returncode == 2 and "RFC 3339" in wrong.stderr


def _rehash(db: sqlite3.Connection, seq: int) -> None:
    row = db.execute(
        "SELECT seq, at, event, task_id, actor, data, prev_hash FROM audit_log WHERE seq = ?",
        (seq,),
    ).fetchone()
    digest = entry_hash(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), row[6])
    db.execute("UPDATE audit_log SET hash = ? WHERE seq = ?", (digest, seq))


def _edit(db: sqlite3.Connection) -> None:
    db.execute("""UPDATE audit_log SET data = '{"justification":"forged"}' WHERE seq = 2""")


def _edit_and_rehash(db: sqlite3.Connection) -> None:
    _edit(db)
    _rehash(db, 2)


def _remove_middle(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM audit_log WHERE seq = 2")


def _cut_the_end(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)")


def _append(db: sqlite3.Connection) -> None:
    seq, prev = db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    data: dict[str, Any] = {"item": 0, "approval_id": "apr_forged"}
    digest = entry_hash(seq + 1, time.time(), "approved", "arq_x", "operator", data, prev)
    db.execute(
        "INSERT INTO audit_log VALUES (?, ?, 'approved', 'arq_x', 'operator', ?, ?, ?)",
        (seq + 1, time.time(), json.dumps(data), prev, digest),
    )


def _insert_middle(db: sqlite3.Connection) -> None:
    last = db.execute("SELECT MAX(seq) FROM audit_log").fetchone()[0]
    for seq in range(last, 2, -1):  # make room at 3, from the end
        db.execute("UPDATE audit_log SET seq = seq + 1 WHERE seq = ?", (seq,))
    prev = db.execute("SELECT hash FROM audit_log WHERE seq = 2").fetchone()[0]
    data = {"justification": "inserted"}
    digest = entry_hash(3, 1.0, "denied", "arq_x", "operator", data, prev)
    db.execute(
        "INSERT INTO audit_log VALUES (3, 1.0, 'denied', 'arq_x', 'operator', ?, ?, ?)",
        (json.dumps(data), prev, digest),
    )


@pytest.mark.parametrize(
    ("tamper", "said"),
    [
        (_edit, "entry 2: its hash does not match its contents"),
        (_edit_and_rehash, "entry 3: it does not name the hash of the entry before it"),
        (_remove_middle, "entry 3 follows entry 1: entries are missing"),
        (_cut_the_end, "the recorded head is entry"),
        (_append, "the recorded head is entry"),
        (_insert_middle, "entry 4: its hash does not match its contents"),
    ],
    ids=["edited", "edited-and-rehashed", "removed", "cut-off", "appended", "inserted"],
)
def test_tampering_is_found(
    server: DTRServer,
    tmp_path: Path,
    tamper: Callable[[sqlite3.Connection], None],
    said: str,
) -> None:
    config = _copy_of(server, tmp_path)
    database = tmp_path / "bridge.sqlite3"
    with contextlib.closing(sqlite3.connect(database, isolation_level=None)) as db:
        tamper(db)
    done = bridge("audit", "verify", config=config)
    assert done.returncode == 1, done.stdout
    assert said in done.stderr, done.stderr
    assert "NOT intact" in done.stderr


def _copy_of(server: DTRServer, folder: Path) -> Path:
    """The server's configuration on a copy of its database, taken with SQLite's backup."""
    copy = folder / "bridge.sqlite3"
    with (
        contextlib.closing(sqlite3.connect(server.database)) as source,
        contextlib.closing(sqlite3.connect(copy)) as target,
    ):
        source.backup(target)
    text = server.oauth.config.read_text(encoding="utf-8")
    config = folder / "bridge.toml"
    config.write_text(text.replace(str(server.database), str(copy)), encoding="utf-8")
    return config
