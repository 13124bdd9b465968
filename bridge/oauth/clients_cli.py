"""`bridge clients add|list|remove`: manage the client registry file.

The file is edited as text, not re-serialised: `add` appends a table and `remove` cuts one
out, so operators' comments and layout survive. Every edit is validated as a whole registry
before it replaces the file (atomically, via a temporary file and `os.replace`), so a running
bridge, which re-reads the file when it changes, never sees a half-written or invalid one.
A generated secret is printed once and never written: the file holds only its hash.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError

from ..rar import ProfileLoadError, ProfileSet, load_profiles
from ..settings import DEFAULT_CONFIG, ConfigError, Settings, load_settings
from .clients import (
    GRANT_CIBA,
    GRANT_DEFERRED,
    GRANT_JWT_BEARER,
    GRANT_REFRESH_TOKEN,
    GRANT_TOKEN_EXCHANGE,
    SECRET_METHODS,
    AuthMethod,
    ClientSettings,
    hash_secret,
    header_path,
    parse_clients_text,
)
from .registry_checks import client_problems

HEADER = """\
# The OAuth client registry of AuthZEN Bridge: one [clients.<client_id>] table per client.
# Managed with `bridge clients add|list|remove`; hand edits are fine (docs/clients.md).
# Secrets are stored only as hashes; the bridge re-reads this file when it changes.
"""
# Short names accepted by `--grant-type`, shown by `list`.
GRANT_ALIASES = {
    "token-exchange": GRANT_TOKEN_EXCHANGE,
    "jwt-bearer": GRANT_JWT_BEARER,
    "deferred": GRANT_DEFERRED,
    "ciba": GRANT_CIBA,
}
_SHORT = {urn: alias for alias, urn in GRANT_ALIASES.items()}
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `clients` command; its handler is `run(args, settings)`."""
    clients = subparsers.add_parser("clients", help="manage the OAuth client registry")
    actions = clients.add_subparsers(dest="clients_command", required=True)

    add = actions.add_parser("add", help="register a client (prints a generated secret once)")
    add.add_argument("client_id")
    add.add_argument("--auth-method", required=True, choices=get_args(AuthMethod))
    add.add_argument(
        "--grant-type",
        action="append",
        default=[],
        metavar="G",
        help="grant type (repeatable); short names: " + ", ".join(GRANT_ALIASES),
    )
    add.add_argument(
        "--type",
        action="append",
        default=[],
        metavar="T",
        help="authorization_details type the client may request (repeatable)",
    )
    add.add_argument(
        "--scope",
        action="append",
        default=[],
        metavar="S",
        help="scope it may request (repeatable)",
    )
    add.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        metavar="URI",
        help="where /authorize may send users back, matched exactly (repeatable)",
    )
    add.add_argument(
        "--require-par",
        action="store_true",
        help="refuse /authorize without a request_uri from /par",
    )
    add.add_argument("--dpop", action="store_true", help="require DPoP proofs")
    add.add_argument("--refresh-tokens", action="store_true", help="issue refresh tokens")
    keys = add.add_mutually_exclusive_group()
    keys.add_argument("--jwks-uri", metavar="URL", help="private_key_jwt: the client's JWKS URL")
    keys.add_argument("--jwks-file", type=Path, metavar="FILE", help="private_key_jwt: a JWKS")
    add.add_argument("--lifetime", type=int, metavar="SECONDS", help="access token lifetime")
    add.add_argument("--notification-endpoint", metavar="URL", help="https URL for pings")
    add.add_argument(
        "--backchannel-delivery-mode",
        choices=("poll", "ping"),
        help="CIBA: poll (default) or ping",
    )
    add.add_argument(
        "--backchannel-notification-endpoint", metavar="URL", help="CIBA: https URL for pings"
    )
    add.add_argument("--description", default="", help="free text for operators")

    listing = actions.add_parser("list", help="show the registered clients")
    remove = actions.add_parser("remove", help="delete a client")
    remove.add_argument("client_id")
    for parser in (add, listing, remove):
        parser.add_argument(
            "--config",
            type=Path,
            help=f"TOML configuration (default: ./{DEFAULT_CONFIG} when present)",
        )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Carry out a parsed `bridge clients ...` command; the exit status."""
    path = settings.resolve(settings.oauth.clients_file)
    try:
        if args.clients_command == "add":
            profiles = load_profiles(settings.resolve(settings.oauth.profiles_dir), missing_ok=True)
            return _add(path, args, profiles)
        if args.clients_command == "list":
            return _list(path)
        return _remove(path, args.client_id)
    except (ConfigError, ProfileLoadError) as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bridge.oauth.clients_cli add|list|remove ...`: `bridge clients ...`."""
    parser = argparse.ArgumentParser(prog="bridge")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["clients", *(sys.argv[1:] if argv is None else argv)])
    config = args.config or (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    return run(args, settings)


def _add(path: Path, args: argparse.Namespace, profiles: ProfileSet) -> int:
    text = _read(path)
    if any(c.client_id == args.client_id for c in parse_clients_text(text, str(path))):
        print(f"client {args.client_id!r} is already registered in {path}", file=sys.stderr)
        return 1
    grants = [GRANT_ALIASES.get(g, g) for g in args.grant_type] or ["client_credentials"]
    if args.refresh_tokens and GRANT_REFRESH_TOKEN not in grants:
        grants.append(GRANT_REFRESH_TOKEN)
    secret = secrets.token_urlsafe(32) if args.auth_method in SECRET_METHODS else None
    table: dict[str, Any] = {
        "client_id": args.client_id,
        "auth_method": args.auth_method,
        "grant_types": grants,
        "authorization_details_types": args.type,
        "scopes": args.scope,
        "require_dpop": args.dpop,
        "refresh_tokens": args.refresh_tokens,
        "token_lifetime_seconds": args.lifetime,
        "jwks_uri": args.jwks_uri,
        "notification_endpoint": args.notification_endpoint,
        "backchannel_token_delivery_mode": args.backchannel_delivery_mode,
        "backchannel_client_notification_endpoint": args.backchannel_notification_endpoint,
        "redirect_uris": args.redirect_uri,
        "require_pushed_authorization_requests": args.require_par,
        "description": args.description,
    }
    if secret is not None:
        table["secret_hash"] = hash_secret(secret)
    if args.jwks_file is not None:
        try:
            table["jwks"] = json.loads(args.jwks_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"{args.jwks_file}: not a readable JSON key set: {exc}", file=sys.stderr)
            return 1
    try:
        client = ClientSettings.model_validate(table)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            where = ".".join(str(p) for p in err["loc"])
            message = str(err["msg"]).removeprefix("Value error, ")
            print(f"{where + ': ' if where else ''}{message}", file=sys.stderr)
        return 1
    # What `bridge serve` would refuse at its next start is refused now.
    problems = client_problems([client], profiles, str(path))
    if problems:
        for problem in problems:
            print(problem.message, file=sys.stderr)
        return 1
    if not text:
        text = HEADER
    separator = "" if text.endswith("\n\n") else "\n" if text.endswith("\n") else "\n\n"
    _write(path, text + separator + table_text(client))
    print(f"client {client.client_id!r} added to {path}")
    if secret is not None:
        print(f"client_secret: {secret}")
        print("Keep it now: it is not stored anywhere and cannot be shown again.")
    return 0


def _list(path: Path) -> int:
    clients = parse_clients_text(_read(path), str(path))
    if not clients:
        print(f"no clients in {path}")
        return 0
    rows = [("CLIENT_ID", "AUTH_METHOD", "DPOP", "ENABLED", "GRANT_TYPES", "TYPES", "SCOPES")]
    for c in sorted(clients, key=lambda c: c.client_id):
        rows.append((
            c.client_id, c.auth_method, "yes" if c.require_dpop else "no",
            "yes" if c.enabled else "no", ",".join(_SHORT.get(g, g) for g in c.grant_types),
            ",".join(c.authorization_details_types) or "-", ",".join(c.scopes) or "-",
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _remove(path: Path, client_id: str) -> int:
    text = _read(path)
    if not any(c.client_id == client_id for c in parse_clients_text(text, str(path))):
        print(f"no client {client_id!r} in {path}", file=sys.stderr)
        return 1
    lines = text.splitlines(keepends=True)
    start = end = None
    for i, line in enumerate(lines):
        key = header_path(line.strip()) if line.lstrip().startswith("[") else None
        if key is None:
            continue
        if start is None and key == ("clients", client_id):
            start = i
        elif start is not None and key[:2] != ("clients", client_id):
            end = i
            break
    remaining = text
    if start is not None:
        while start > 0 and lines[start - 1].lstrip().startswith("#"):
            start -= 1  # the comments just above a table are about that client
        remaining = "".join(lines[:start] + lines[end if end is not None else len(lines) :])
    if any(c.client_id == client_id for c in parse_clients_text(remaining, str(path))):
        hint = f"{client_id!r} is not written as a [clients.{client_id}] table"
        print(f"{hint}: remove it by hand", file=sys.stderr)
        return 1
    _write(path, re.sub(r"\n{3,}", "\n\n", remaining).rstrip("\n") + "\n")
    print(f"client {client_id!r} removed from {path}")
    return 0


def table_text(client: ClientSettings) -> str:
    """`client` as a TOML table (no secret: only the hash is in the model)."""
    data = client.model_dump(mode="json", exclude_none=True, exclude={"client_id"})
    lines = [f"[clients.{_key(client.client_id)}]"]
    lines += [f"{_key(name)} = {_value(value)}" for name, value in data.items()]
    return "\n".join(lines) + "\n"


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else json.dumps(name)


def _value(value: Any) -> str:
    # A JSON string is a valid TOML basic string: same quotes, escapes a subset of TOML's.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        # Raw UTF-8 (TOML has no surrogate escapes); DEL is the one control JSON leaves raw.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def _write(path: Path, text: str) -> None:
    """Validate `text` as a registry, then replace the file in one step."""
    parse_clients_text(text, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


if __name__ == "__main__":
    sys.exit(main())
