"""`bridge users add|list|remove|passwd`: the local accounts file (`front_door.users_file`).

Passwords are read from the terminal without echo, or from standard input with
`--password-stdin` (one line, for scripts); never from the command line, where `ps` and
shell histories would keep them. The running bridge picks the changed file up by itself.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import sys
import tempfile
from pathlib import Path

from ..problems import Problem
from ..settings import Settings
from .local_accounts import HASHER, USER_NAME, UsersFileError, parse_users_text

HEADER = (
    "# Local accounts of AuthZEN Bridge: one [users.<name>] table each, managed with\n"
    "# `bridge users add|list|remove|passwd`. Passwords are stored only as argon2id hashes.\n"
)
MIN_PASSWORD = 8


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = subparsers.add_parser("users", help="manage local accounts (sign-in at /authorize)")
    actions = users.add_subparsers(dest="users_command", required=True)
    add = actions.add_parser("add", help="add an account")
    add.add_argument("name")
    add.add_argument("--subject-type", default="user", help="AuthZEN subject.type (user)")
    passwd = actions.add_parser("passwd", help="set an account's password")
    passwd.add_argument("name")
    for parser in (add, passwd):
        parser.add_argument(
            "--password-stdin", action="store_true", help="read the password from stdin"
        )
    listing = actions.add_parser("list", help="show the accounts (never their hashes)")
    remove = actions.add_parser("remove", help="delete an account")
    remove.add_argument("name")
    for parser in (add, passwd, listing, remove):
        parser.add_argument("--config", type=Path, help="TOML configuration")


def run(args: argparse.Namespace, settings: Settings) -> int:
    path = settings.resolve(settings.front_door.users_file)
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        accounts = parse_users_text(text, str(path))
    except (OSError, UsersFileError) as exc:
        print(exc, file=sys.stderr)
        return 1
    command = args.users_command
    if command == "list":
        for account in accounts.values():
            print(f"{account.name}\t{account.subject_type}")
        return 0
    if command == "remove":
        if args.name not in accounts:
            print(f"no account {args.name!r} in {path}", file=sys.stderr)
            return 1
        del accounts[args.name]
        tables = {n: _table(a.model_dump()) for n, a in accounts.items()}
        _write(path, accounts_text(tables, header_of(path)))
        print(f"account {args.name!r} removed from {path}")
        return 0
    if command == "add" and args.name in accounts:
        print(f"account {args.name!r} already exists in {path}", file=sys.stderr)
        return 1
    if command == "passwd" and args.name not in accounts:
        print(f"no account {args.name!r} in {path}", file=sys.stderr)
        return 1
    if not USER_NAME.match(args.name):
        print("user names are 1-64 of letters, digits and . _ @ -", file=sys.stderr)
        return 1
    password = _password(args.password_stdin)
    if password is None:
        return 1
    tables = {n: _table(a.model_dump()) for n, a in accounts.items()}
    if command == "add":
        tables[args.name] = {"subject_type": args.subject_type, "properties": {}}
    tables[args.name]["password_hash"] = HASHER.hash(password)
    _write(path, accounts_text(tables, header_of(path)))
    print(f"account {args.name!r} {'added to' if command == 'add' else 'updated in'} {path}")
    return 0


def users_file_problems(settings: Settings) -> list[Problem]:
    """What `bridge check` (and a start) refuses in the users file; a missing file is none."""
    path = settings.resolve(settings.front_door.users_file)
    if not settings.front_door.enabled or not path.exists():
        return []
    try:
        parse_users_text(path.read_text(encoding="utf-8"), "")
    except OSError as exc:
        return [Problem(str(path), None, f"cannot read: {exc.strerror}")]
    except UsersFileError as exc:
        return [Problem(str(path), None, str(exc).removeprefix(": "))]
    return []


def _table(dumped: dict[str, object]) -> dict[str, object]:
    dumped.pop("name", None)
    return dumped


def _password(from_stdin: bool) -> str | None:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("the passwords differ", file=sys.stderr)
            return None
    if len(password) < MIN_PASSWORD:
        print(f"a password needs at least {MIN_PASSWORD} characters", file=sys.stderr)
        return None
    return password


def header_of(path: Path) -> str:
    """The comment lines the file starts with (the operator's notes), kept when the file is
    written again; HEADER for a new file or one without them."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except OSError:
        return HEADER
    head = []
    for line in lines:
        if not (line.startswith("#") or not line.strip()):
            break
        head.append(line)
    text = "".join(head).rstrip("\n")
    return text + "\n" if text else HEADER


def accounts_text(tables: dict[str, dict[str, object]], header: str = HEADER) -> str:
    out = [header]
    for name, table in tables.items():
        out.append(f"\n[users.{json.dumps(name)}]\n")
        out.append(f"password_hash = {json.dumps(table['password_hash'])}\n")
        out.append(f"subject_type = {json.dumps(table.get('subject_type', 'user'))}\n")
        properties = table.get("properties")
        if isinstance(properties, dict) and properties:
            # Strings, numbers and booleans in JSON are TOML values too.
            items = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in properties.items())
            out.append(f"properties = {{ {items} }}\n")
    return "".join(out)


def _write(path: Path, text: str) -> None:
    parse_users_text(text, str(path))  # never write a file the server would refuse
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o600)  # hashes are not passwords, but need not be readable by all
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
