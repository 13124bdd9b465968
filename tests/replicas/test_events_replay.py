"""A SET is taken once across replicas (a replay at another replica is refused too): the
replay cache its `jti` goes into is the shared database's, so the same SET pushed to a second
replica, later or at the same moment, is refused there and changes nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bridge.events.event_types import SESSION_REVOKED
from tests.events.helpers import SIGNALS, assert_refused, events_config, person_id, push
from tests.replicas.cluster import Cluster, cluster
from tests.support.postgres import PostgresDatabase

pytest_plugins = ["tests.support.plugin"]


def revocations_of(running: Cluster, who: str) -> int:
    rows = running.rows(
        "SELECT COUNT(*) FROM audit_log WHERE event = 'subject_revoked' "
        "AND data::jsonb -> 'subject' ->> 'id' = %s",
        who,
    )
    return int(rows[0][0])


def test_a_set_taken_by_one_replica_is_refused_by_another(
    tmp_path: Path, postgres_database: PostgresDatabase
) -> None:
    with cluster(
        tmp_path,
        postgres_database,
        "http://127.0.0.1:9/unused",
        names=("a", "b"),
        extra=events_config(SIGNALS),
    ) as running:
        a, b = running["a"], running["b"]
        who = "replayed@example.com"
        token = SIGNALS.set(SESSION_REVOKED, {}, person_id(who))
        assert push(a.http, token).status_code == 202
        assert revocations_of(running, who) == 1
        body = assert_refused(push(b.http, token), "invalid_request")
        assert "received before" in body["description"]
        assert revocations_of(running, who) == 1

        # Pushed to both at the same moment: one of them takes it.
        other = "raced@example.com"
        raced = SIGNALS.set(SESSION_REVOKED, {}, person_id(other))
        with ThreadPoolExecutor(2) as pushing:
            answers: list[httpx.Response] = list(
                pushing.map(lambda replica: push(replica.http, raced), (a, b))
            )
        assert sorted(r.status_code for r in answers) == [202, 400]
        assert revocations_of(running, other) == 1
