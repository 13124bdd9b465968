"""Deferred Token Responses under the token issuance mapping, with the embedded store
`policies/issuance`: a requestable denial the client opted in for becomes an access
request, and AROP's all-or-nothing rule holds from there (the approved request is issued
whole, never narrowed); without the opt-in the same denial narrows the token instead, as
the token issuance profile says, and refuses it only when nothing is left."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bridge.settings import load_settings
from tests.conftest import POLICIES, serve
from tests.dtr_fixtures import (
    DTRServer,
    assert_deferred,
    dtr_clients,
    dtr_config_text,
    unique_record,
)
from tests.oauth_fixtures import (
    CRM,
    OAuthServer,
    assert_oauth_error,
    exchange_form,
    server_config,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DTRServer]:
    folder: Path = tmp_path_factory.mktemp("dtr-issuance")
    extra = dtr_config_text(folder, deferral={"interval_seconds": 1})
    extra += '\n[pdp]\nmapping = "token_issuance"\n'
    config = server_config(
        folder, clients=dtr_clients(), policies=POLICIES / "issuance", extra=extra
    )
    settings = load_settings(config)
    with (
        serve(settings) as thread,
        httpx.Client(base_url=thread.url, timeout=10) as http,
    ):
        oauth = OAuthServer(thread, http, config, POLICIES / "issuance")
        yield DTRServer(oauth, settings, folder)


def read_and_export(record: str) -> list[dict[str, object]]:
    return [
        {"type": "customer_records", "actions": ["read", "export"], "locations": [CRM + record]}
    ]


def test_an_approved_request_is_issued_whole(server: DTRServer) -> None:
    record = unique_record()
    details = read_and_export(record)
    deferral = server.defer(exchange_form(details))
    request = server.find_request("manager-1", CRM + record)
    # Only the export waits for the manager; the gates and the read were permitted.
    assert [item["action"]["name"] for item in request["items"]] == ["export"]
    server.approve("manager-1", request["id"])
    redeemed = server.poll_until_settled(deferral)
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json()["authorization_details"] == details


def test_without_the_opt_in_a_requestable_denial_narrows(server: DTRServer) -> None:
    record = unique_record()
    body = server.oauth.issued(exchange_form(read_and_export(record)))
    assert body["authorization_details"] == [
        {"type": "customer_records", "actions": ["read"], "locations": [CRM + record]}
    ]
    assert server.requests_about("manager-1", CRM + record) == []


def test_nothing_left_but_what_could_be_approved_says_so(server: DTRServer) -> None:
    record = unique_record()
    export = [{"type": "customer_records", "actions": ["export"], "locations": [CRM + record]}]
    refused = assert_oauth_error(
        server.oauth.token(exchange_form(export)), "invalid_authorization_details"
    )
    assert "completion_mode=deferred" in refused["error_description"]
    # Opted in, the same request is deferred.
    assert_deferred(server.token({**exchange_form(export), "completion_mode": "deferred"}))
