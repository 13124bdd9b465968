"""RemotePDP against simulated misbehaving PDPs (httpx.MockTransport) and one closed port.

The well-behaved path against a real second bridge is covered by the end-to-end tests; here
every test makes the remote side do something wrong (or unusual) and checks that the client
notices, never reading a failure as a permit.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from bridge.authzen import remote, remote_transport
from bridge.authzen.errors import PDPProtocolError, PDPRequestRejected, PDPUnavailable
from bridge.authzen.models import (
    ActionSearchRequest,
    Decision,
    EvaluationRequest,
    EvaluationsSemantic,
    ResourceSearchRequest,
    SubjectSearchRequest,
)
from bridge.authzen.remote import RemotePDP, backoff_delay, well_known_url
from bridge.request_id import request_id_var
from bridge.settings import RemotePDPSettings

BASE = "https://pdp.test"
TOKEN = "s3cret-token-value"
WELL_KNOWN = "/.well-known/authzen-configuration"
EVAL = "/access/v1/evaluation"
EVALS = "/access/v1/evaluations"

Handler = Callable[[httpx.Request], Awaitable[httpx.Response] | httpx.Response]


def settings(url: str = BASE, **options: Any) -> RemotePDPSettings:
    values: dict[str, Any] = {"url": url, "backoff_seconds": 0, "retries": 2}
    values.update(options)
    return RemotePDPSettings.model_validate(values)


def metadata(base: str = BASE, **changes: Any) -> dict[str, Any]:
    """A complete metadata document; a change to None removes the member."""
    doc: dict[str, Any] = {"policy_decision_point": base}
    root = base.rstrip("/")
    doc.update({member: root + path for member, path in remote.DEFAULT_PATHS.items()})
    for member, value in changes.items():
        if value is None:
            doc.pop(member, None)
        else:
            doc[member] = value
    return doc


def ok(body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.Response(200, json=body, **kwargs)


class FakePDP:
    """Routes by path to a handler, or to a list of responses served one after another."""

    def __init__(self, routes: dict[str, Handler | list[httpx.Response]]) -> None:
        self.routes = routes
        self.calls: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        route = self.routes.get(request.url.path)
        if route is None:
            return httpx.Response(404, json={"error": {"status": 404, "message": "no route"}})
        if isinstance(route, list):
            return route.pop(0)
        answer = route(request)
        if isinstance(answer, httpx.Response):
            return answer
        return await answer

    def count(self, path: str, method: str | None = None) -> int:
        return sum(
            1
            for call in self.calls
            if call.url.path == path and (method is None or call.method == method)
        )

    def bodies(self, path: str) -> list[Any]:
        return [json.loads(call.content) for call in self.calls if call.url.path == path]


def client(fake: FakePDP, **options: Any) -> RemotePDP:
    url = options.pop("url", BASE)
    return RemotePDP(settings(url, **options), transport=httpx.MockTransport(fake))


def request(
    subject: str = "alice", action: str = "read", resource: str = "r1"
) -> EvaluationRequest:
    return EvaluationRequest.model_validate(
        {
            "subject": {"type": "user", "id": subject},
            "action": {"name": action},
            "resource": {"type": "record", "id": resource},
        }
    )


# -- discovery -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identifier", "expected"),
    [
        ("https://h", "https://h/.well-known/authzen-configuration"),
        ("https://h/", "https://h/.well-known/authzen-configuration"),
        ("https://h/stores/x", "https://h/.well-known/authzen-configuration/stores/x"),
        ("https://h:8443/t/", "https://h:8443/.well-known/authzen-configuration/t"),
    ],
)
def test_well_known_url_inserts_segment_between_host_and_path(
    identifier: str, expected: str
) -> None:
    assert well_known_url(identifier) == expected


async def test_discovery_uses_document_endpoints_and_caches_it() -> None:
    base = "https://pdp.test/stores/x"
    doc = metadata(base, access_evaluation_endpoint="https://decide.test/v1/eval")
    fake = FakePDP(
        {
            f"{WELL_KNOWN}/stores/x": lambda r: ok(doc),
            "/v1/eval": lambda r: ok({"decision": True, "context": {"why": "policy-1"}}),
        }
    )
    async with client(fake, url=base) as pdp:
        first = await pdp.evaluate(request())
        second = await pdp.evaluate(request())
        caps = await pdp.capabilities()
        meta = await pdp.metadata()
    assert first == second == Decision(True, {"why": "policy-1"})
    assert [c.url.host for c in fake.calls if c.method == "POST"] == ["decide.test"] * 2
    assert fake.count(f"{WELL_KNOWN}/stores/x", "GET") == 1  # cached for the client's life
    assert caps.access_evaluation_endpoint == "https://decide.test/v1/eval"
    assert caps.batch and caps.search_endpoint("action") == base + "/access/v1/search/action"
    assert meta["policy_decision_point"] == base


async def test_metadata_with_max_age_zero_is_fetched_again() -> None:
    fake = FakePDP(
        {
            WELL_KNOWN: lambda r: ok(metadata(), headers={"Cache-Control": "public, max-age=0"}),
            EVAL: lambda r: ok({"decision": False}),
        }
    )
    async with client(fake) as pdp:
        await pdp.evaluate(request())
        await pdp.evaluate(request())
    assert fake.count(WELL_KNOWN) == 2


async def test_trailing_slash_difference_in_identifier_is_accepted() -> None:
    fake = FakePDP(
        {
            f"{WELL_KNOWN}/t": lambda r: ok(metadata("https://pdp.test/t/")),
            "/t" + EVAL: lambda r: ok({"decision": True}),
        }
    )
    async with client(fake, url="https://pdp.test/t") as pdp:
        assert await pdp.evaluate(request()) == Decision(True)


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(metadata("https://evil.test"), id="other-pdp"),
        pytest.param(metadata("https://pdp.test/tenant"), id="other-path"),
        pytest.param(metadata(policy_decision_point=None), id="no-identifier"),
        pytest.param(metadata(access_evaluation_endpoint=None), id="no-evaluation-endpoint"),
        pytest.param(metadata(access_evaluation_endpoint=42), id="endpoint-not-string"),
        pytest.param(
            metadata(access_evaluation_endpoint="http://pdp.test/eval"), id="https-downgrade"
        ),
        pytest.param(metadata(capabilities="urn:x"), id="capabilities-not-array"),
        pytest.param([metadata()], id="not-an-object"),
    ],
)
async def test_unusable_metadata_is_a_protocol_error_and_nothing_is_evaluated(
    document: Any,
) -> None:
    fake = FakePDP({WELL_KNOWN: lambda r: ok(document), EVAL: lambda r: ok({"decision": True})})
    async with client(fake) as pdp:
        with pytest.raises(PDPProtocolError):
            await pdp.evaluate(request())
    assert fake.count(EVAL) == 0


async def test_without_discovery_default_paths_under_the_url_are_used() -> None:
    fake = FakePDP({"/t/a" + EVAL: lambda r: ok({"decision": True})})
    async with client(fake, url="https://pdp.test/t/a/", discovery=False) as pdp:
        assert await pdp.evaluate(request()) == Decision(True)
        caps = await pdp.capabilities()
    assert fake.count(WELL_KNOWN) == 0 and len(fake.calls) == 1
    assert caps.search_subject_endpoint == "https://pdp.test/t/a/access/v1/search/subject"


# -- answers that are not decisions ----------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<html>oops</html>", id="html"),
        pytest.param(b"", id="empty"),
        pytest.param(b"[true]", id="array"),
        pytest.param(b"{}", id="no-decision"),
        pytest.param(b'{"decision": "true"}', id="string-decision"),
        pytest.param(b'{"decision": 1}', id="number-decision"),
        pytest.param(b'{"decision": null}', id="null-decision"),
        pytest.param(b'{"decision": true, "context": "fine"}', id="context-not-object"),
        pytest.param(b'{"decision": false, "decision": true}', id="duplicate-member"),
        pytest.param(b'{"decision": true, "context": {"x": NaN}}', id="nan"),
        pytest.param(b'{"decision": true', id="truncated"),
        pytest.param(b'\xff{"decision": true}', id="not-utf8"),
    ],
)
async def test_a_body_that_is_not_a_decision_is_a_protocol_error_without_retry(
    body: bytes,
) -> None:
    fake = FakePDP({EVAL: lambda r: httpx.Response(200, content=body)})
    async with client(fake, discovery=False) as pdp:
        with pytest.raises(PDPProtocolError):
            await pdp.evaluate(request())
    assert fake.count(EVAL) == 1


# -- retries and HTTP statuses ---------------------------------------------------------------


async def test_503_then_200_is_retried_once_with_the_same_request_id() -> None:
    fake = FakePDP({EVAL: [httpx.Response(503), ok({"decision": True})]})
    async with client(fake, discovery=False, retries=2) as pdp:
        assert await pdp.evaluate(request()) == Decision(True)
    assert fake.count(EVAL) == 2
    ids = {call.headers["x-request-id"] for call in fake.calls}
    assert len(ids) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_are_retried_then_unavailable(status: int) -> None:
    fake = FakePDP({EVAL: lambda r: httpx.Response(status)})
    async with client(fake, discovery=False, retries=3, bearer_token=TOKEN) as pdp:
        with pytest.raises(PDPUnavailable) as caught:
            await pdp.evaluate(request())
    assert fake.count(EVAL) == 4
    message = str(caught.value)
    assert f"{BASE}{EVAL}" in message and f"HTTP {status}" in message
    assert TOKEN not in message


async def test_no_retries_configured_means_one_attempt() -> None:
    fake = FakePDP({EVAL: lambda r: httpx.Response(503)})
    async with client(fake, discovery=False, retries=0) as pdp:
        with pytest.raises(PDPUnavailable):
            await pdp.evaluate(request())
    assert fake.count(EVAL) == 1


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("reset")],
)
async def test_transport_errors_are_retried_then_unavailable(error: httpx.TransportError) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    fake = FakePDP({EVAL: fail})
    async with client(fake, discovery=False, retries=2) as pdp:
        with pytest.raises(PDPUnavailable) as caught:
            await pdp.evaluate(request())
    assert fake.count(EVAL) == 3
    assert type(error).__name__ in str(caught.value)


async def test_backoff_doubles_from_the_configured_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    delays: list[float] = []

    async def record(delay: float) -> None:
        delays.append(delay)

    monkeypatch.setattr(remote_transport, "_sleep", record)
    fake = FakePDP({EVAL: lambda r: httpx.Response(504)})
    async with client(fake, discovery=False, retries=3, backoff_seconds=0.5) as pdp:
        with pytest.raises(PDPUnavailable):
            await pdp.evaluate(request())
    assert len(delays) == 3
    for delay, expected in zip(delays, [0.5, 1.0, 2.0], strict=True):
        assert expected <= delay <= expected * 1.1
    assert backoff_delay(0.0, 5) == 0.0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429])
async def test_4xx_is_rejected_without_retry_and_without_leaking_the_key(status: int) -> None:
    body = {"error": {"status": status, "message": f"bad request, you sent {TOKEN}"}}
    fake = FakePDP({EVAL: lambda r: httpx.Response(status, json=body)})
    async with client(fake, discovery=False, api_key=TOKEN) as pdp:
        with pytest.raises(PDPRequestRejected) as caught:
            await pdp.evaluate(request())
    assert fake.count(EVAL) == 1
    assert caught.value.status == status
    assert "bad request" in str(caught.value) and TOKEN not in str(caught.value)


async def test_501_is_not_supported_and_not_retried() -> None:
    fake = FakePDP({EVAL: lambda r: httpx.Response(501)})
    async with client(fake, discovery=False) as pdp:
        with pytest.raises(PDPRequestRejected) as caught:
            await pdp.evaluate(request())
    assert caught.value.status == 501 and fake.count(EVAL) == 1


async def test_redirect_is_not_followed() -> None:
    moved = httpx.Response(307, headers={"Location": "https://elsewhere.test/eval"})
    fake = FakePDP({EVAL: [moved], "/eval": lambda r: ok({"decision": True})})
    async with client(fake, discovery=False) as pdp:
        with pytest.raises(PDPProtocolError):
            await pdp.evaluate(request())
    assert len(fake.calls) == 1


async def test_closed_port_is_unavailable_after_the_configured_retries() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    class Counting(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.AsyncHTTPTransport()
            self.attempts = 0

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            self.attempts += 1
            return await self.inner.handle_async_request(request)

        async def aclose(self) -> None:
            await self.inner.aclose()

    transport = Counting()
    config = settings(f"http://127.0.0.1:{port}", discovery=False, retries=2, backoff_seconds=0.01)
    async with RemotePDP(config, transport=transport) as pdp:
        with pytest.raises(PDPUnavailable) as caught:
            await pdp.evaluate(request())
    assert transport.attempts == 3
    assert f"127.0.0.1:{port}" in str(caught.value)


# -- headers ---------------------------------------------------------------------------------


async def test_bearer_token_request_id_and_json_body() -> None:
    fake = FakePDP({EVAL: lambda r: ok({"decision": False})})
    async with client(fake, discovery=False, bearer_token=TOKEN, api_key="unused") as pdp:
        marker = request_id_var.set("req-42")
        try:
            assert await pdp.evaluate(request()) == Decision(False)
        finally:
            request_id_var.reset(marker)
        await pdp.evaluate(request())
    first, second = fake.calls
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    assert first.headers["content-type"] == "application/json"
    assert first.headers["x-request-id"] == "req-42"
    fresh = second.headers["x-request-id"]
    assert len(fresh) == 32 and int(fresh, 16) >= 0
    assert json.loads(first.content) == {
        "subject": {"type": "user", "id": "alice"},
        "action": {"name": "read"},
        "resource": {"type": "record", "id": "r1"},
    }


async def test_api_key_is_sent_raw_and_unsafe_request_id_is_replaced() -> None:
    fake = FakePDP({EVAL: lambda r: ok({"decision": True})})
    async with client(fake, discovery=False, api_key=TOKEN) as pdp:
        marker = request_id_var.set("evil\r\nX-Injected: 1")
        try:
            await pdp.evaluate(request())
        finally:
            request_id_var.reset(marker)
    (call,) = fake.calls
    assert call.headers["authorization"] == TOKEN
    assert "x-injected" not in call.headers and len(call.headers["x-request-id"]) == 32


def test_credential_that_cannot_be_a_header_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError) as caught:
        RemotePDP(settings(bearer_token="abc\r\ndef"), transport=httpx.MockTransport(ok))
    assert "abc" not in str(caught.value)


async def test_closed_client_is_unavailable() -> None:
    fake = FakePDP({EVAL: lambda r: ok({"decision": True})})
    pdp = client(fake, discovery=False)
    await pdp.aclose()
    with pytest.raises(PDPUnavailable):
        await pdp.evaluate(request())
    assert fake.calls == []


# -- batch -----------------------------------------------------------------------------------


def three() -> list[EvaluationRequest]:
    return [request(resource=f"r{i}") for i in range(3)]


async def test_batch_is_one_request_with_options_only_when_not_execute_all() -> None:
    answer = {"evaluations": [{"decision": True}, {"decision": False}, {"decision": True}]}
    fake = FakePDP({EVALS: lambda r: ok(answer)})
    async with client(fake, discovery=False) as pdp:
        all_of_them = await pdp.evaluations(three())
        # The PDP ignores the semantic and answers everything: truncated here instead.
        stopped = await pdp.evaluations(three(), EvaluationsSemantic.deny_on_first_deny)
    assert [d.decision for d in all_of_them] == [True, False, True]
    assert [d.decision for d in stopped] == [True, False]
    plain, with_options = fake.bodies(EVALS)
    assert "options" not in plain
    assert [item["resource"]["id"] for item in plain["evaluations"]] == ["r0", "r1", "r2"]
    assert with_options["options"] == {"evaluations_semantic": "deny_on_first_deny"}
    assert fake.count(EVAL) == 0


async def test_legitimately_truncated_batch_is_accepted() -> None:
    answer = {"evaluations": [{"decision": False}, {"decision": True}]}
    fake = FakePDP({EVALS: lambda r: ok(answer)})
    async with client(fake, discovery=False) as pdp:
        result = await pdp.evaluations(three(), EvaluationsSemantic.permit_on_first_permit)
    assert result == [Decision(False), Decision(True)]


@pytest.mark.parametrize(
    ("semantic", "answer"),
    [
        pytest.param(
            EvaluationsSemantic.execute_all,
            {"evaluations": [{"decision": True}] * 4},
            id="oversized",
        ),
        pytest.param(
            EvaluationsSemantic.execute_all,
            {"evaluations": [{"decision": True}, {"decision": True}]},
            id="truncated-execute-all",
        ),
        pytest.param(
            EvaluationsSemantic.deny_on_first_deny,
            {"evaluations": [{"decision": True}, {"decision": True}]},
            id="truncated-without-deny",
        ),
        pytest.param(EvaluationsSemantic.execute_all, {"evaluations": []}, id="empty"),
        pytest.param(EvaluationsSemantic.execute_all, {"evaluations": {}}, id="not-array"),
        pytest.param(
            EvaluationsSemantic.execute_all,
            {"evaluations": [{"decision": True}, {}, {"decision": True}]},
            id="item-without-decision",
        ),
        pytest.param(EvaluationsSemantic.execute_all, {"decision": True}, id="plain-for-three"),
    ],
)
async def test_batch_answers_that_do_not_fit_the_request_are_protocol_errors(
    semantic: EvaluationsSemantic, answer: Any
) -> None:
    fake = FakePDP({EVALS: lambda r: ok(answer)})
    async with client(fake, discovery=False) as pdp:
        with pytest.raises(PDPProtocolError):
            await pdp.evaluations(three(), semantic)


async def test_plain_decision_answers_a_batch_of_one() -> None:
    fake = FakePDP({EVALS: lambda r: ok({"decision": True})})
    async with client(fake, discovery=False) as pdp:
        assert await pdp.evaluations([request()]) == [Decision(True)]


async def test_empty_batch_makes_no_call() -> None:
    fake = FakePDP({})
    async with client(fake) as pdp:
        assert await pdp.evaluations([]) == []
    assert fake.calls == []


async def test_without_batch_endpoint_calls_are_emulated_in_request_order() -> None:
    in_flight = 0
    most = 0

    async def decide(call: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        index = int(json.loads(call.content)["resource"]["id"][1:])
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.001 * (40 - index))  # later items finish first
        in_flight -= 1
        return ok({"decision": index % 5 != 3})

    doc = metadata(access_evaluations_endpoint=None)
    fake = FakePDP({WELL_KNOWN: lambda r: ok(doc), EVAL: decide})
    items = [request(resource=f"r{i}") for i in range(40)]
    async with client(fake) as pdp:
        everything = await pdp.evaluations(items)
        stopped = await pdp.evaluations(items, EvaluationsSemantic.deny_on_first_deny)
    assert [d.decision for d in everything] == [i % 5 != 3 for i in range(40)]
    assert [d.decision for d in stopped] == [True, True, True, False]
    assert fake.count(EVAL) == 80 and fake.count(EVALS) == 0
    assert 1 < most <= 16


async def test_emulated_batch_fails_as_a_whole_when_one_call_fails() -> None:
    def decide(call: httpx.Request) -> httpx.Response:
        if json.loads(call.content)["resource"]["id"] == "r1":
            return httpx.Response(200, content=b"garbage")
        return ok({"decision": True})

    doc = metadata(access_evaluations_endpoint=None)
    fake = FakePDP({WELL_KNOWN: lambda r: ok(doc), EVAL: decide})
    async with client(fake) as pdp:
        with pytest.raises(PDPProtocolError):
            await pdp.evaluations(three())


# -- search ----------------------------------------------------------------------------------

SUBJECT_SEARCH = "/access/v1/search/subject"


def subject_search(limit: int | None = 2) -> SubjectSearchRequest:
    body: dict[str, Any] = {
        "subject": {"type": "user"},
        "action": {"name": "read"},
        "resource": {"type": "record", "id": "r1"},
        "context": {"ip": "10.0.0.1"},
    }
    if limit is not None:
        body["page"] = {"limit": limit}
    return SubjectSearchRequest.model_validate(body)


async def test_search_follows_next_token_resending_the_original_request() -> None:
    pages = [
        ok(
            {
                "page": {"next_token": "t1"},
                "results": [
                    {"type": "user", "id": "alice", "properties": {"x": 1}},
                    {"type": "user", "id": "bob"},
                ],
            }
        ),
        ok({"page": {"next_token": "t2"}, "results": [{"type": "user", "id": "bob"}]}),
        ok({"page": {"next_token": ""}, "results": [{"type": "user", "id": "carol"}]}),
    ]
    fake = FakePDP({SUBJECT_SEARCH: pages})
    async with client(fake, discovery=False) as pdp:
        result = await pdp.search_subject(subject_search())
    assert result.results == [
        {"type": "user", "id": "alice"},
        {"type": "user", "id": "bob"},
        {"type": "user", "id": "carol"},
    ]
    assert result.page is None
    first, second, third = fake.bodies(SUBJECT_SEARCH)
    assert first == subject_search().model_dump(exclude_none=True)
    assert second == {**first, "page": {"limit": 2, "token": "t1"}}
    assert third == {**first, "page": {"limit": 2, "token": "t2"}}


async def test_search_without_page_is_one_call() -> None:
    fake = FakePDP({SUBJECT_SEARCH: [ok({"results": [{"type": "user", "id": "alice"}]})]})
    async with client(fake, discovery=False) as pdp:
        result = await pdp.search_subject(subject_search(limit=None))
    assert result.results == [{"type": "user", "id": "alice"}] and len(fake.calls) == 1


async def test_repeated_page_token_is_a_protocol_error() -> None:
    looping = {"page": {"next_token": "again"}, "results": []}
    fake = FakePDP({SUBJECT_SEARCH: lambda r: ok(looping)})
    async with client(fake, discovery=False) as pdp:
        with pytest.raises(PDPProtocolError):
            await pdp.search_subject(subject_search())
    assert fake.count(SUBJECT_SEARCH) == 2


async def test_endless_pages_stop_at_the_cap() -> None:
    counter = 0

    def endless(call: httpx.Request) -> httpx.Response:
        nonlocal counter
        counter += 1
        return ok({"page": {"next_token": f"t{counter}"}, "results": []})

    fake = FakePDP({SUBJECT_SEARCH: endless})
    async with client(fake, discovery=False) as pdp:
        pdp.max_search_pages = 5
        with pytest.raises(PDPProtocolError):
            await pdp.search_subject(subject_search())
    assert fake.count(SUBJECT_SEARCH) == 5


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({}, id="no-results"),
        pytest.param({"results": {"type": "user"}}, id="results-not-array"),
        pytest.param({"results": [{"type": "user", "id": 7}]}, id="numeric-id"),
        pytest.param({"results": [{"id": "alice"}]}, id="no-type"),
        pytest.param({"results": ["alice"]}, id="string-result"),
        pytest.param({"results": [], "page": {"next_token": 5}}, id="token-not-string"),
        pytest.param({"results": [], "page": "next"}, id="page-not-object"),
    ],
)
async def test_malformed_search_answers_are_protocol_errors(answer: Any) -> None:
    fake = FakePDP({SUBJECT_SEARCH: lambda r: ok(answer)})
    async with client(fake, discovery=False) as pdp:
        with pytest.raises(PDPProtocolError):
            await pdp.search_subject(subject_search())


async def test_action_search_results_are_names() -> None:
    answers = [ok({"results": [{"name": "read"}, {"name": "write", "properties": {}}]})]
    fake = FakePDP({"/access/v1/search/action": answers})
    search = ActionSearchRequest.model_validate(
        {"subject": {"type": "user", "id": "alice"}, "resource": {"type": "record", "id": "r1"}}
    )
    async with client(fake, discovery=False) as pdp:
        result = await pdp.search_action(search)
    assert result.results == [{"name": "read"}, {"name": "write"}]
    bad = FakePDP({"/access/v1/search/action": [ok({"results": [{"type": "a", "id": "b"}]})]})
    async with client(bad, discovery=False) as pdp:
        with pytest.raises(PDPProtocolError):
            await pdp.search_action(search)


async def test_search_missing_from_metadata_is_not_supported() -> None:
    doc = metadata(search_resource_endpoint=None)
    fake = FakePDP({WELL_KNOWN: lambda r: ok(doc)})
    search = ResourceSearchRequest.model_validate(
        {
            "subject": {"type": "user", "id": "alice"},
            "action": {"name": "read"},
            "resource": {"type": "record"},
        }
    )
    async with client(fake) as pdp:
        with pytest.raises(PDPRequestRejected) as caught:
            await pdp.search_resource(search)
        assert not (await pdp.capabilities()).search_resource_endpoint
    assert caught.value.status == 501
    assert "not supported" in str(caught.value)
    assert all(call.method == "GET" for call in fake.calls)
