"""Who a `login_hint` names (`bridge.ciba.users.KnownUsers`): a local account, as the
password sign-in makes her; with upstream sign-in configured, any subject of the
organisation's provider, of its subject type; else `unknown_user_id`."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.ciba.errors import UnknownUserId
from bridge.ciba.users import KnownUsers
from bridge.front_door.local_accounts import LocalAccounts
from bridge.settings import Settings
from tests.front_door.helpers import users_toml

UPSTREAM = {
    "issuer": "https://idp.example",
    "client_id": "bridge",
    "client_secret": "s",
    "subject_type": "employee",
}


def settings(tmp_path: Path, **front_door: object) -> Settings:
    (tmp_path / "users.toml").write_text(users_toml({"alice": "pw"}), encoding="utf-8")
    return Settings.model_validate({"front_door": front_door, "base_dir": tmp_path})


def known(settings: Settings) -> KnownUsers:
    """As the bridge makes them: with the front door's local accounts, when it has them."""
    options = settings.front_door
    accounts = (
        LocalAccounts(settings.resolve(options.users_file)) if options.local_accounts else None
    )
    return KnownUsers(settings, accounts)


def test_a_local_account_is_known(tmp_path: Path) -> None:
    users = known(settings(tmp_path))
    alice = users.person("alice")
    assert (alice.name, alice.subject_type, alice.method) == ("alice", "user", "local")
    for unknown in ("bob", "Alice", "alice ", "a\x00lice", "x" * 300):
        with pytest.raises(UnknownUserId):
            users.person(unknown)


def test_with_upstream_sign_in_any_subject_is_known(tmp_path: Path) -> None:
    users = known(settings(tmp_path, upstream_signin=UPSTREAM))
    assert users.person("alice").method == "local"  # her account first
    someone = users.person("u-4711")
    assert (someone.name, someone.subject_type, someone.method) == ("u-4711", "employee", "oidc")
    with pytest.raises(UnknownUserId):
        users.person(" u-4711")


def test_without_local_accounts_only_the_provider_knows_people(tmp_path: Path) -> None:
    users = known(settings(tmp_path, local_accounts=False, upstream_signin=UPSTREAM))
    assert users.person("alice").subject_type == "employee"
