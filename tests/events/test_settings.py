"""`[events]` refuses at start what would only fail later, saying which option and why: a
transmitter's keys given twice or not at all, a MAC algorithm, a poll credential without a
poll URL, plain http without `allow_private_network`, two transmitters of one name or issuer,
a receiver whose issuer is not trusted, a store that is not served, a management audience
that subject tokens use, and an event type the bridge does not act on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bridge.app import create_app
from bridge.events.event_types import SESSION_REVOKED
from bridge.settings import Settings
from tests.conftest import REPO
from tests.events.helpers import SIGNALS

JWKS = {"keys": [SIGNALS.key.as_dict(private=False)]}


def transmitter(**values: Any) -> dict[str, Any]:
    return {
        "name": "idp",
        "issuer": "https://idp.example.com",
        "jwks": JWKS,
        "events": [SESSION_REVOKED],
    } | values


def settings(**events: Any) -> Settings:
    return Settings.model_validate({"events": events})


def test_a_transmitter_as_configured_is_accepted() -> None:
    found = settings(transmitters=[transmitter()]).events.transmitters[0]
    assert (found.subject_type, found.store, found.audience) == ("user", "default", None)


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"jwks_uri": "https://idp.example.com/jwks"}, "exactly one of `jwks` and `jwks_uri`"),
        ({"jwks": None}, "exactly one of `jwks` and `jwks_uri`"),
        ({"algorithms": ["HS256"]}, "not an asymmetric signature algorithm"),
        ({"poll_authorization_file": "secret"}, "goes with `poll_url`"),
        ({"poll_url": "http://127.0.0.1:9000/poll"}, "plain http only"),
        ({"poll_url": "https://10.0.0.1/poll"}, "private or loopback"),
        ({"events": []}, "at least 1 item"),
        ({"name": "two words"}, "String should match pattern"),
    ],
)
def test_a_transmitter_that_cannot_work_is_refused(values: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        settings(transmitters=[transmitter(**values)])


def test_names_and_issuers_are_unique() -> None:
    with pytest.raises(ValidationError, match="two have the same name"):
        settings(transmitters=[transmitter(), transmitter(issuer="https://other.example")])
    with pytest.raises(ValidationError, match="two have the same issuer"):
        settings(transmitters=[transmitter(), transmitter(name="other")])


def test_receivers_and_stores_must_be_known() -> None:
    receiver = {
        "name": "siem",
        "issuer": "https://idp.example.com",
        "subject": "s",
        "audience": "a",
    }
    with pytest.raises(ValidationError, match=r"is not one of oauth\.trusted_issuers"):
        settings(transmitter={"enabled": True, "receivers": [receiver]})
    with pytest.raises(ValidationError, match="store 'archive' is not configured"):
        settings(transmitters=[transmitter(store="archive")])


def test_the_management_audience_is_not_a_subject_token_audience() -> None:
    with pytest.raises(ValidationError, match="give receivers' tokens their own"):
        Settings.model_validate(
            {
                "oauth": {"issuer": "https://bridge.example.com"},
                "events": {
                    "transmitter": {"enabled": True, "audience": "https://bridge.example.com"}
                },
            }
        )


def test_an_event_type_the_bridge_does_not_act_on_stops_the_start(tmp_path: Path) -> None:
    configured = settings(transmitters=[transmitter(events=["urn:example:unknown"])])
    state = configured.model_copy(update={"base_dir": REPO})  # the shipped stores
    oauth = state.oauth.model_copy(update={"key_encryption_key_file": tmp_path / "kek"})
    storage = state.storage.model_copy(update={"path": tmp_path / "bridge.sqlite3"})
    with pytest.raises(ValueError, match="not an event type the bridge acts on"):
        create_app(state.model_copy(update={"oauth": oauth, "storage": storage}))
