"""`bridge keys rotate|list|new-kek`: signing key management from the command line.

Works beside a running server (SQLite in WAL mode): the server publishes a new key in its
JWKS at once and starts signing with it within seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
from pathlib import Path
from typing import Any

from ..jose.sealing import load_key_encryption_key, new_key_encryption_key
from ..jose.signing_keys import SigningKeys
from ..settings import Settings
from ..store.backends import SchemaBehind, database_exists, store_for
from .clients import ClientRegistry

# Retired keys stay published this much longer than the longest token lifetime (clock skew).
_MARGIN_SECONDS = 60


def register(commands: Any) -> None:
    keys = commands.add_parser("keys", help="manage access token signing keys")
    keys.add_argument("--config", type=Path, help="TOML configuration")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    for name, text in (
        ("rotate", "make a new signing key; retire the current one"),
        ("list", "show the published keys"),
        ("new-kek", "print a fresh key-encryption key (for a secret store; changes nothing)"),
    ):
        action = actions.add_parser(name, help=text)
        # Also accepted after the subcommand; SUPPRESS keeps an earlier --config from being reset.
        action.add_argument(
            "--config", type=Path, default=argparse.SUPPRESS, help="TOML configuration"
        )


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_run(args.keys_command, settings))


async def _run(command: str, settings: Settings) -> int:
    if command == "new-kek":
        # For the secret store or the file that production reads the key from: printed,
        # never written anywhere by the bridge itself.
        print(new_key_encryption_key())
        return 0
    if command == "list" and not database_exists(settings):
        # Listing creates nothing: no database, no key-encryption key file.
        print("no signing keys yet: the bridge makes its first one when it starts")
        return 0
    store = store_for(settings, migrate=command == "rotate")
    try:
        await store.open()
    except SchemaBehind as exc:
        print(f"bridge keys {command}: {exc}", file=sys.stderr)
        return 1
    try:
        if command == "rotate":
            kek = load_key_encryption_key(settings.resolve(settings.oauth.key_encryption_key_file))
            keys = SigningKeys(store, kek, settings.oauth.signing_alg)
            kid = await keys.rotate(
                keep_published_for=_longest_lifetime(settings) + _MARGIN_SECONDS
            )
            print(f"new signing key {kid}; earlier keys stay published until their tokens expire")
            return 0
        records = await store.signing_keys()
        if not records:
            print("no signing keys yet: the bridge makes its first one when it starts")
        for record in records:
            state = (
                "signing"
                if record.retired_at is None
                else f"retired, published until {_time(record.expires_at)}"
            )
            print(f"{record.kid}  {record.alg}  created {_time(record.created_at)}  {state}")
        return 0
    finally:
        await store.close()


def _longest_lifetime(settings: Settings) -> int:
    registry = ClientRegistry.load(settings.resolve(settings.oauth.clients_file), missing_ok=True)
    return registry.longest_token_lifetime(settings.oauth.access_token_lifetime_seconds)


def _time(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
