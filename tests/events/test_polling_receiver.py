"""Poll delivery with the bridge as the receiver (RFC 8936), for transmitters that offer no
push: B polls A's poll stream at each housekeeping pass, acts on the SETs it finds (A told it
a person's session was revoked: B ends their deferral) and acknowledges them, so A's queue
is empty afterwards."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from bridge.events.event_types import SESSION_REVOKED
from tests.approvals.helpers import approvals_server, export_for, person
from tests.dtr_fixtures import unique_record
from tests.events.helpers import SIGNALS, events_config, person_id, push, wait_until
from tests.oauth_fixtures import IDP, ISSUER, idp_token

MANAGEMENT = "https://bridge-a.test/ssf"
B_AUDIENCE = "https://bridge-b.test/ssf/events"


def a_config() -> str:
    return events_config(SIGNALS) + "\n".join(
        [
            "[events.transmitter]",
            "enabled = true",
            f'audience = "{MANAGEMENT}"',
            "",
            "[[events.transmitter.receivers]]",
            'name = "bridge-b"',
            f'issuer = "{IDP}"',
            'subject = "bridge-b"',
            f'audience = "{B_AUDIENCE}"',
            "",
        ]
    )


def b_config(a_url: str, stream_id: str, token_file: Path) -> str:
    return "\n".join(
        [
            "",
            "[events]",
            "[[events.transmitters]]",
            'name = "bridge-a"',
            f'issuer = "{ISSUER}"',
            f'jwks_uri = "{a_url}/jwks"',
            f'audience = "{B_AUDIENCE}"',
            f'events = ["{SESSION_REVOKED}"]',
            f'poll_url = "{a_url}/ssf/poll/{stream_id}"',
            f'poll_authorization_file = "{token_file}"',
            "allow_private_network = true",
            "",
        ]
    )


def waiting_sets(database: Path) -> int:
    with contextlib.closing(sqlite3.connect(database)) as db:
        return int(db.execute("SELECT COUNT(*) FROM ssf_poll_queue").fetchone()[0])


def test_the_bridge_polls_a_transmitter_and_acts_on_its_sets(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = tmp_path_factory.mktemp("polling")
    credential = "Bearer " + idp_token("bridge-b", aud=MANAGEMENT, expires_in=3600)
    with approvals_server(folder / "a", extra=a_config()) as a:
        created = a.http.post(
            "/ssf/streams",
            json={"events_requested": [SESSION_REVOKED]},
            headers={"Authorization": credential},
        )
        assert created.status_code == 201, created.text
        stream_id = created.json()["stream_id"]
        token_file = folder / "poll-authorization"
        token_file.write_text(credential + "\n", encoding="utf-8")
        token_file.chmod(0o600)
        with approvals_server(
            folder / "b", extra=b_config(a.oauth.url, stream_id, token_file)
        ) as b:
            who = person()
            deferral = b.defer(export_for(who, unique_record()))
            assert push(a.http, SIGNALS.set(SESSION_REVOKED, {}, person_id(who))).status_code == 202
            assert b.poll_until_settled(deferral, timeout=40).json()["error"] == "access_denied"
            # B acknowledged what it took: nothing waits at A any more.
            wait_until("the acknowledgment", lambda: waiting_sets(a.database) == 0, 15)
