"""A PDP's obligations (the AuthZEN obligations profile) at the token endpoint: a permit is
honoured only when the bridge carries out every obligation on it, else it is a denial.

The bridge asks a scripted remote PDP over real HTTP (the embedded Cedar engine puts no
obligations in its decisions): `notification` goes out through a configured webhook, a
deployment's own `custom` handler (`tests.support.custom_obligations`, loaded from its
import path) is carried out, and each kind is refused when it cannot be: a destination
nobody configured, a custom obligation no handler recognises or whose handler fails, a
type without a handler, a malformed obligation, a step-up on a grant with nobody to sign
in again. The metadata publishes what is supported. The step-up at the front door is
tests/front_door/test_step_up.py.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.authzen.models import Action, Decision, EvaluationRequest, Resource, Subject
from bridge.authzen.obligations import Obligation
from bridge.errors import OAuthError
from bridge.oauth.grants.base import Principal
from bridge.oauth.obligations import (
    BaseObligationHandler,
    CannotComply,
    Enforcement,
    Obligations,
    handler_problems,
    load_handlers,
)
from bridge.settings import ConfigError, load_settings
from tests.conftest import POLICIES, ServerThread, serve
from tests.oauth_fixtures import (
    OAuthServer,
    assert_oauth_error,
    rar,
    read_details,
    server_config,
)
from tests.support import custom_obligations
from tests.support.scripted_pdp import Answer, ScriptedPDP
from tests.support.web import LocalWebServer, WebResponse

HANDLER = "tests.support.custom_obligations:Watermark"
READ = {"grant_type": "client_credentials", "scope": "customer_records:read"}


def with_obligations(*obligations: dict[str, Any], decision: bool = True) -> Any:
    def answer(item: Answer) -> Answer:
        return {"decision": decision, "context": {"obligations": list(obligations)}}

    return answer


def notification(ident: str, to: str | list[str], body: str = "alice read c-1") -> dict[str, Any]:
    return {
        "id": ident,
        "type": "notification",
        "properties": {"to": to, "topic": "Record read", "body": body},
    }


def watermark(ident: str, text: str = "CONFIDENTIAL") -> dict[str, Any]:
    properties = {"vendor": "example-dlp-suite", "action": "watermark", "watermark_text": text}
    return {"id": ident, "type": "custom", "properties": properties}


def claims_of(jws: bytes | str) -> dict[str, Any]:
    text = jws.decode() if isinstance(jws, bytes) else jws
    payload = text.split(".")[1]
    body: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return body


def notices(web: LocalWebServer, obligation_id: str, timeout: float = 10) -> list[dict[str, Any]]:
    """The obligation notices the webhook received for `obligation_id` (waits for one)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [
            claims_of(r.body)["obligation_notice"]
            for r in web.requests
            if r.path == "/hook"
            and claims_of(r.body).get("obligation_notice", {}).get("obligation_id") == obligation_id
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.fixture(scope="module")
def web() -> Iterator[LocalWebServer]:
    with LocalWebServer({"/hook": lambda request: WebResponse(b"", status=204)}) as running:
        yield running


@pytest.fixture(scope="module")
def pdp() -> Iterator[ScriptedPDP]:
    scripted = ScriptedPDP()
    with ServerThread(scripted.app) as thread:
        scripted.url = thread.url
        yield scripted


@pytest.fixture
def scripted(pdp: ScriptedPDP) -> ScriptedPDP:
    pdp.reset()
    return pdp


def bridge_config(folder: Path, pdp_url: str, web_url: str, handlers: list[str]) -> Path:
    extra = f"""
[pdp]
kind = "remote"

[pdp.remote]
url = "{pdp_url}"
retries = 0

[notifications.webhooks.security]
url = "{web_url}/hook"
allow_private_network = true

[notifications.webhooks.dora-phone]
url = "{web_url}/hook"
allow_private_network = true

[notifications.people.dora]
webhook = "dora-phone"
"""
    config = server_config(folder, policies=POLICIES / "default", extra=extra)
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace("[oauth]\n", f"[oauth]\nobligation_handlers = {json.dumps(handlers)}\n", 1),
        encoding="utf-8",
    )
    return config


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, pdp: ScriptedPDP, web: LocalWebServer
) -> Iterator[OAuthServer]:
    folder = tmp_path_factory.mktemp("obligations")
    config = bridge_config(folder, pdp.url, web.url, [HANDLER])
    with serve(load_settings(config)) as thread, httpx.Client(base_url=thread.url) as http:
        yield OAuthServer(thread, http, config, POLICIES / "default")


# -- what is supported -----------------------------------------------------------------------


def test_the_metadata_publishes_the_obligations_carried_out(server: OAuthServer) -> None:
    metadata = server.http.get("/.well-known/oauth-authorization-server").json()
    assert metadata["supported_obligations"] == ["custom", "notification", "step-up"]


def test_without_a_handler_or_anyone_to_tell_only_step_up_is_supported(
    tmp_path: Path, pdp: ScriptedPDP
) -> None:
    extra = f'[pdp]\nkind = "remote"\n[pdp.remote]\nurl = "{pdp.url}"'
    config = server_config(tmp_path, extra=extra)
    with serve(load_settings(config)) as thread:
        metadata = httpx.get(thread.url + "/.well-known/oauth-authorization-server").json()
    assert metadata["supported_obligations"] == ["step-up"]


# -- notification ------------------------------------------------------------------------------


def test_a_notification_goes_out_through_the_webhook_and_the_token_is_issued(
    server: OAuthServer, scripted: ScriptedPDP, web: LocalWebServer
) -> None:
    scripted.decide = with_obligations(notification("obl-n1", "security"))
    body = server.issued(READ)
    assert body["scope"] == "customer_records:read"
    (notice,) = notices(web, "obl-n1")
    assert notice["topic"] == "Record read"
    assert notice["body"] == "alice read c-1"
    assert notice["recipient"] == "webhook:security"
    assert notice["subject"] == "client demo-agent"
    assert notice["what"] == "read on CustomerRecord *"


def test_a_notification_to_a_person_reaches_her_channel(
    server: OAuthServer, scripted: ScriptedPDP, web: LocalWebServer
) -> None:
    # The branch of the profile with `decision_subject` makes `to` an array: read too.
    scripted.decide = with_obligations(notification("obl-n2", ["dora"]))
    server.issued(READ)
    (notice,) = notices(web, "obl-n2")
    assert notice["recipient"] == "person:dora"


def test_a_notification_to_an_unknown_destination_is_a_denial(
    server: OAuthServer, scripted: ScriptedPDP, web: LocalWebServer
) -> None:
    scripted.decide = with_obligations(
        notification("obl-n3a", "security"), notification("obl-n3", "mallory@evil.example")
    )
    body = assert_oauth_error(server.token(READ), "invalid_scope")
    # The bridge's words about the denial, never the PDP's.
    assert "mallory" not in body["error_description"]
    # The notice the bridge can send is sent all the same (a denial's obligations are
    # carried out too).
    (sent,) = notices(web, "obl-n3a")
    assert sent["recipient"] == "webhook:security"


def test_a_notice_body_is_one_line_of_at_most_2000_characters(
    server: OAuthServer, scripted: ScriptedPDP, web: LocalWebServer
) -> None:
    long = "first line\nsecond line " + "x" * 3000
    scripted.decide = with_obligations(notification("obl-n5", "security", body=long))
    server.issued(READ)
    (notice,) = notices(web, "obl-n5")
    assert "\n" not in notice["body"] and "first line" in notice["body"]
    assert len(notice["body"]) <= 2000


def test_the_notifications_of_a_denial_go_out_too(
    server: OAuthServer, scripted: ScriptedPDP, web: LocalWebServer
) -> None:
    scripted.decide = with_obligations(notification("obl-n4", "security"), decision=False)
    assert_oauth_error(server.token(READ), "invalid_scope")
    assert len(notices(web, "obl-n4")) == 1


def test_one_unmet_obligation_denies_yet_the_others_are_carried_out(
    server: OAuthServer, scripted: ScriptedPDP, web: LocalWebServer
) -> None:
    terminate = {"id": "obl-x", "type": "session_termination", "properties": {"subject": "a"}}
    scripted.decide = with_obligations(notification("obl-n5", "security"), terminate)
    assert_oauth_error(server.token(READ), "invalid_scope")
    assert len(notices(web, "obl-n5")) == 1


# -- custom --------------------------------------------------------------------------------


def test_a_custom_obligation_is_carried_out_by_the_deployments_handler(
    server: OAuthServer, scripted: ScriptedPDP
) -> None:
    scripted.decide = with_obligations(watermark("obl-c1", "jdoe 2026-07-03"))
    server.issued(READ)
    assert ("obl-c1", "demo-agent", "jdoe 2026-07-03") in custom_obligations.CARRIED_OUT


def test_a_custom_obligation_no_handler_recognises_is_a_denial(
    server: OAuthServer, scripted: ScriptedPDP
) -> None:
    other = {"id": "obl-c2", "type": "custom", "properties": {"vendor": "another-suite"}}
    scripted.decide = with_obligations(other)
    details = read_details("cust-0001")
    body = assert_oauth_error(
        server.token({"grant_type": "client_credentials", "authorization_details": rar(details)}),
        "invalid_authorization_details",
    )
    assert body["error_description"].startswith("authorization_details[0]")


def test_a_custom_obligation_the_handler_refuses_or_fails_is_a_denial(
    server: OAuthServer, scripted: ScriptedPDP
) -> None:
    no_text = watermark("obl-c3")
    del no_text["properties"]["watermark_text"]
    scripted.decide = with_obligations(no_text)
    assert_oauth_error(server.token(READ), "invalid_scope")
    scripted.decide = with_obligations(watermark("obl-c4", "fail"))
    assert_oauth_error(server.token(READ), "invalid_scope")
    assert not [c for c in custom_obligations.CARRIED_OUT if c[0] in ("obl-c3", "obl-c4")]


# -- what no handler carries out -------------------------------------------------------------


@pytest.mark.parametrize(
    "obligation",
    [
        {"id": "obl-s", "type": "session_termination", "properties": {"subject": "alice"}},
        {"id": "obl-f", "type": "filter", "properties": {}},
        # The first draft's flat members: `properties` is REQUIRED in the merged profile.
        {"id": "obl-flat", "type": "notification", "to": "security", "body": "x"},
        {"id": "obl-empty", "type": "notification", "properties": {"to": "security"}},
        {"type": "custom", "properties": {}},
    ],
    ids=["unsupported type", "unknown type", "flat members", "no body", "no id"],
)
def test_an_obligation_the_bridge_cannot_comply_with_is_a_denial(
    server: OAuthServer, scripted: ScriptedPDP, obligation: dict[str, Any]
) -> None:
    scripted.decide = with_obligations(obligation)
    assert_oauth_error(server.token(READ), "invalid_scope")


def test_obligations_that_are_not_an_array_are_a_denial(
    server: OAuthServer, scripted: ScriptedPDP
) -> None:
    scripted.decide = lambda item: {"decision": True, "context": {"obligations": {"id": "x"}}}
    assert_oauth_error(server.token(READ), "invalid_scope")


def test_a_step_up_on_client_credentials_is_a_denial(
    server: OAuthServer, scripted: ScriptedPDP
) -> None:
    step_up = {"id": "obl-u", "type": "step-up", "properties": {"acr_value": "urn:loa:3"}}
    scripted.decide = with_obligations(step_up)
    # Nobody can sign in again on a client credentials grant: a denial, not a challenge.
    assert_oauth_error(server.token(READ), "invalid_scope")


# -- configuration ---------------------------------------------------------------------------


def test_a_handler_that_cannot_be_loaded_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot be imported"):
        load_handlers(["tests.support.custom_obligations:Nowhere"])
    with pytest.raises(ValueError, match="not an obligation handler"):
        load_handlers(["tests.support.custom_obligations:not_a_handler"])
    (tmp_path / "bridge.toml").write_text('[oauth]\nobligation_handlers = ["not a path"]\n')
    with pytest.raises(ConfigError, match="obligation_handlers"):
        load_settings(tmp_path / "bridge.toml")
    # `bridge check` (and `serve`) say so before anything starts.
    (tmp_path / "bridge.toml").write_text(
        '[oauth]\nobligation_handlers = ["tests.support.custom_obligations:Nowhere"]\n'
    )
    (problem,) = handler_problems(load_settings(tmp_path / "bridge.toml"))
    assert "Nowhere" in problem.message
    assert handler_problems(load_settings(None)) == []


# -- the rules, one batch at a time -----------------------------------------------------------


class Recording(BaseObligationHandler):
    def __init__(self, kind: str, *, refuse: bool = False, answer: OAuthError | None = None):
        self.obligation_type = kind
        self.refuse = refuse or answer is not None
        self.answer = answer
        self.checked: list[str] = []
        self.done: list[str] = []

    async def check(self, obligation: Obligation, enforcement: Enforcement) -> None:
        self.checked.append(obligation.id)
        if self.refuse:
            raise CannotComply("refused", answer=self.answer)

    async def carry_out(self, obligation: Obligation, enforcement: Enforcement) -> None:
        self.done.append(obligation.id)


def request() -> EvaluationRequest:
    return EvaluationRequest(
        subject=Subject(type="user", id="alice"),
        action=Action(name="read"),
        resource=Resource(type="CustomerRecord", id="c-1"),
    )


def decision(allowed: bool, *obligations: tuple[str, str]) -> Decision:
    listed = [{"id": i, "type": t, "properties": {}} for i, t in obligations]
    return Decision(allowed, {"obligations": listed})


async def enforce(registry: Obligations, *decisions: Decision) -> list[Decision]:
    return await registry.enforce(
        [request() for _ in decisions],
        decisions,
        grant_type="authorization_code",
        client_id="demo-web",
        principal=Principal(subject=Subject(type="user", id="alice"), token_sub="alice"),
    )


async def test_every_check_comes_before_anything_is_carried_out() -> None:
    log, refusing = Recording("log"), Recording("notify", refuse=True)
    registry = Obligations()
    registry.register(log, refusing)
    honoured = await enforce(
        registry, decision(True, ("a", "log"), ("b", "notify")), decision(True, ("c", "log"))
    )
    assert [d.decision for d in honoured] == [False, True]
    # What could be carried out was, on the decision denied too; the refused one was not.
    assert log.done == ["a", "c"] and refusing.done == []


async def test_an_answer_is_given_only_when_acting_on_it_lifts_every_shortfall() -> None:
    class Again(OAuthError):
        error = "sign_in_again"

    registry = Obligations()
    registry.register(Recording("step"), Recording("answering", answer=Again("x")))
    with pytest.raises(Again):
        await enforce(registry, decision(True, ("a", "answering")))
    # With another obligation that no answer lifts, it is a plain denial.
    honoured = await enforce(registry, decision(True, ("a", "answering"), ("b", "unknown")))
    assert not honoured[0].decision


async def test_a_second_handler_for_a_registered_type_is_refused() -> None:
    registry = Obligations()
    registry.register(Recording("notification"), Recording("custom"), Recording("custom"))
    with pytest.raises(ValueError, match="two handlers"):
        registry.register(Recording("notification"))
