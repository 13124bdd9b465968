"""`bridge db migrate` and `bridge db status`: the schema of the configured database (SQLite
or PostgreSQL), for deployments that migrate as a step of their own
(`storage.migrate_on_start = false`). Messages name a PostgreSQL database without its
password."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from ..settings import Settings
from .backends import describe, schema_status, store_for


def register(commands: Any) -> None:
    db = commands.add_parser("db", help="the database schema")
    actions = db.add_subparsers(dest="db_command", required=True)
    for name, text in (
        ("migrate", "apply the schema migrations the database still needs"),
        ("status", "print the schema version and what is pending (changes nothing)"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("--config", type=Path, help="TOML configuration")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.db_command == "status":
        try:
            where = describe(settings)
            current, latest, pending = schema_status(settings)
        except Exception as exc:
            print(f"bridge db status: {exc}", file=sys.stderr)
            return 1
        print(f"database {where}")
        print(f"schema version {current} (this bridge knows {latest})")
        for version, description in pending:
            print(f"pending {version}: {description}")
        return 0
    return asyncio.run(_migrate(settings))


async def _migrate(settings: Settings) -> int:
    # Opening with migrations on is the migration: one transaction, one process at a time
    # (SQLite's write lock, PostgreSQL's advisory lock), so it is safe beside running replicas.
    try:
        store = store_for(settings, migrate=True)
        await store.open()
    except Exception as exc:
        print(f"bridge db migrate: {exc}", file=sys.stderr)
        return 1
    await store.close()
    current, latest, _ = schema_status(settings)
    print(f"schema version {current} (up to date)" if current == latest else f"at {current}")
    return 0
