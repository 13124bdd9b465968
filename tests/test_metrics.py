"""`/metrics`: off unless configured, the bearer token when one is set, and the counts an
operator reads (requests by route and status with their latency, decisions by store and
outcome, token requests by grant and outcome, deferrals by state, the outbox backlog)
moving with what the bridge did. Counters are per process, so each check reads a delta."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridge.metrics_endpoint import token_problems
from bridge.settings import load_settings
from tests.conftest import serve
from tests.dtr_fixtures import (
    DTRServer,
    dtr_clients,
    dtr_config_text,
    export_details,
    unique_record,
)
from tests.oauth_fixtures import OAuthServer, rar, read_details, server_config

TOKEN = "scrape-token-for-tests"

Labels = tuple[tuple[str, str], ...]


def samples(text: str) -> dict[str, dict[Labels, float]]:
    found: dict[str, dict[Labels, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DTRServer]:
    folder = tmp_path_factory.mktemp("metrics")
    (folder / "metrics.token").write_text(TOKEN + "\n")
    extra = dtr_config_text(folder) + '\n[metrics]\nenabled = true\ntoken_file = "metrics.token"\n'
    config = server_config(folder, clients=dtr_clients(), extra=extra)
    settings = load_settings(config)
    with serve(settings) as thread, httpx.Client(base_url=thread.url, timeout=10) as http:
        yield DTRServer(OAuthServer(thread, http, config, folder), settings, folder)


def scrape(bridge: DTRServer) -> dict[str, dict[Labels, float]]:
    answer = bridge.http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    assert answer.headers["cache-control"] == "no-store"
    return samples(answer.text)


def value(found: dict[str, dict[Labels, float]], name: str, **labels: str) -> float:
    return found.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


def test_without_the_token_metrics_are_refused(bridge: DTRServer) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        refused = bridge.http.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Bearer realm="metrics"'
        assert "bridge_" not in refused.text


def test_off_by_default(tmp_path: Path) -> None:
    with serve(load_settings(server_config(tmp_path))) as thread:
        assert httpx.get(thread.url + "/metrics").status_code == 404


def test_an_unreadable_token_file_stops_the_start(tmp_path: Path) -> None:
    config = server_config(tmp_path, extra='\n[metrics]\nenabled = true\ntoken_file = "none"\n')
    (problem,) = token_problems(load_settings(config))
    assert "cannot read metrics.token_file" in str(problem)
    (tmp_path / "none").write_text("\n")
    (problem,) = token_problems(load_settings(config))
    assert "metrics.token_file" in str(problem) and str(problem).endswith("is empty")


def test_token_requests_decisions_and_routes_are_counted(bridge: DTRServer) -> None:
    before = scrape(bridge)
    for _ in range(3):
        issued = bridge.token(
            {"grant_type": "client_credentials", "authorization_details": rar(read_details("c-1"))}
        )
        assert issued.status_code == 200, issued.text
    refused = bridge.token({"grant_type": "password", "username": "u", "password": "p"})
    assert refused.status_code == 400
    assert bridge.http.get("/no/such/path").status_code == 404
    after = scrape(bridge)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    issued_labels = {"grant_type": "client_credentials", "outcome": "issued"}
    assert delta("bridge_token_requests_total", **issued_labels) == 3
    assert (
        delta("bridge_token_requests_total", grant_type="unknown", outcome="unsupported_grant_type")
        == 1
    )
    assert delta("bridge_decisions_total", store="default", outcome="permit") >= 3
    assert delta("bridge_http_requests_total", route="/token", method="POST", status="200") == 3
    assert delta("bridge_http_requests_total", route="/token", method="POST", status="400") == 1
    # A path no route knows is one label value, not the path itself.
    assert delta("bridge_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert not any("/no/such/path" in str(labels) for labels in after["bridge_http_requests_total"])
    assert delta("bridge_http_request_duration_seconds_count", route="/token") == 4


def test_deferrals_by_state_and_the_outbox_backlog_are_read_from_the_store(
    bridge: DTRServer,
) -> None:
    before = scrape(bridge)
    details = rar(export_details(unique_record()))
    bridge.defer({"grant_type": "client_credentials", "authorization_details": details})
    after = scrape(bridge)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("bridge_deferrals", state="pending") == 1
    deferred = {"grant_type": "client_credentials", "outcome": "authorization_pending"}
    assert delta("bridge_token_requests_total", **deferred) == 1
    # The backlog is always reported, zero or not.
    assert (("status", "pending"),) in after["bridge_outbox_rows"]
