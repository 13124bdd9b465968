"""What a client registration may say about CIBA (docs/clients.md), and the demo's CIBA
agent: a public client cannot use the grant; `ping` needs its endpoint and the endpoint
needs `ping`; the backchannel options need the grant; `bridge clients add --grant-type ciba`;
the shipped demo serves the endpoint to `demo-ciba-agent` with its published secret."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from bridge.oauth.clients import GRANT_CIBA, ClientSettings, hash_secret, parse_clients_file
from tests.conftest import REPO, write_demo_config

SECRET = hash_secret("s")


def registration(**values: Any) -> ClientSettings:
    fields: dict[str, Any] = {
        "client_id": "agent",
        "auth_method": "client_secret_basic",
        "secret_hash": SECRET,
        "grant_types": [GRANT_CIBA],
    }
    return ClientSettings.model_validate(fields | values)


def test_a_confidential_client_polls_by_default_or_pings() -> None:
    assert registration().backchannel_token_delivery_mode is None  # poll
    pinged = registration(
        backchannel_token_delivery_mode="ping",
        backchannel_client_notification_endpoint="https://agent.example.com/cb",
    )
    assert pinged.backchannel_client_notification_endpoint == "https://agent.example.com/cb"


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"auth_method": "none", "secret_hash": None, "require_dpop": True}, "public client"),
        ({"backchannel_token_delivery_mode": "ping"}, "go together"),
        (
            {"backchannel_client_notification_endpoint": "https://agent.example.com/cb"},
            "go together",
        ),
        ({"backchannel_token_delivery_mode": "push"}, "poll"),
        (
            {
                "backchannel_token_delivery_mode": "ping",
                "backchannel_client_notification_endpoint": "http://agent.example.com/cb",
            },
            "https",
        ),
        (
            {"grant_types": ["client_credentials"], "backchannel_token_delivery_mode": "poll"},
            "need",
        ),
    ],
)
def test_what_a_registration_may_not_say(values: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        registration(**values)


def test_clients_add_registers_a_ciba_client(tmp_path: Path) -> None:
    config = write_demo_config(tmp_path)
    added = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "clients", "add", "pinged-agent",
         "--auth-method", "client_secret_basic", "--grant-type", "ciba",
         "--backchannel-delivery-mode", "ping",
         "--backchannel-notification-endpoint", "https://agent.example.com/cb",
         "--type", "payment_initiation", "--config", str(config)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    registered = parse_clients_file(tmp_path / "clients.toml")["pinged-agent"]
    assert registered.grant_types == [GRANT_CIBA]
    assert registered.backchannel_token_delivery_mode == "ping"


def test_the_demo_registers_a_ciba_agent() -> None:
    demo = parse_clients_file(REPO / "clients.toml")["demo-ciba-agent"]
    assert demo.allows_grant(GRANT_CIBA) and demo.auth_method == "client_secret_basic"


def test_the_demo_serves_ciba_to_its_agent(client: httpx.Client) -> None:
    basic = base64.b64encode(b"demo-ciba-agent:demo-ciba-agent-secret").decode()
    answer = client.post(
        "/bc-authorize",
        data={
            "scope": "openid",
            "login_hint": "alice",
            "binding_message": "Demo 1",
            "authorization_details": (
                '[{"type":"payment_initiation","actions":["initiate"],'
                '"locations":["https://bank.example.com/payments"],'
                '"instructedAmount":{"currency":"EUR","amount":"12.00"},'
                '"creditorName":"Corner Shop",'
                '"creditorAccount":{"iban":"DE02100100109307118603"}}]'
            ),
        },
        headers={"Authorization": f"Basic {basic}"},
    )
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"auth_req_id", "expires_in", "interval"}
