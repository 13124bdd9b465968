"""A replica killed (SIGKILL) while it holds the lease of an outbox row: another replica
delivers the row once the lease has run out, and the client's notification endpoint gets
exactly one answered delivery.

Three replicas on one PostgreSQL database with `storage.outbox_lease_seconds = 3`. The
listener holds the first two pings it receives open, and the test finds which replica sent
each (the process that holds the TCP connection): the first one's sender is killed while it
waits for the answer; the second must come from another replica, after the lease.
"""

from __future__ import annotations

from pathlib import Path

from tests.dtr_fixtures import PING_AGENT, notification_token, payment_details, unique_amount
from tests.oauth_fixtures import exchange_form
from tests.replicas.cluster import HoldingListener, cluster, sender_of, wait_for
from tests.support.postgres import PostgresDatabase

pytest_plugins = ["tests.support.plugin"]

LEASE_SECONDS = 3


def test_a_replica_killed_holding_a_lease_leaves_the_delivery_to_another(
    tmp_path: Path, postgres_database: PostgresDatabase
) -> None:
    with (
        HoldingListener(hold=2) as listener,
        cluster(
            tmp_path,
            postgres_database,
            listener.url,
            storage=f"outbox_lease_seconds = {LEASE_SECONDS}",
        ) as replicas,
    ):
        (amount, cents), token = unique_amount(), notification_token()
        form = {**exchange_form(payment_details(amount)), "client_notification_token": token}
        deferral = replicas["a"].dtr.defer(form, client=PING_AGENT)
        request = replicas["b"].dtr.find_request("finance-1", cents)
        replicas["b"].dtr.approve("finance-1", request["id"])

        (first,) = listener.wait(1)
        assert first.code == deferral.code
        holder = sender_of(first.peer_port, listener.port, replicas.replicas)
        leased = replicas.rows(
            "SELECT status, attempts, next_attempt_at - extract(epoch FROM now()) "
            "FROM outbox WHERE kind = 'deferral_ping'"
        )
        assert [(status, attempts) for status, attempts, _ in leased] == [("pending", 1)]
        assert 0 < leased[0][2] <= LEASE_SECONDS  # held by the dying replica's lease
        replicas.kill(holder)

        # When the lease has run out, another replica claims the row and sends the ping.
        second = listener.wait(2)[1]
        assert second.code == deferral.code
        deliverer = sender_of(second.peer_port, listener.port, replicas.replicas)
        assert deliverer is not holder and deliverer.proc.poll() is None
        listener.release()
        wait_for(
            "the row to be done",
            lambda: (
                replicas.rows("SELECT status, attempts FROM outbox WHERE kind = 'deferral_ping'")
                == [("done", 2)]
            ),
        )
        assert [a.code for a in listener.delivered()] == [deferral.code]
        assert [a.status for a in listener.arrivals] == [None, 204]
        redeemed = deliverer.dtr.poll(deferral.code, client=PING_AGENT)
        assert redeemed.status_code == 200, redeemed.text
