"""Local accounts: one sign-in method, for the embedded default and small deployments.

Accounts live in a TOML file (`front_door.users_file`, managed with `bridge users`), like
the client registry: `[users.<name>]` with an argon2id `password_hash`, and optionally the
AuthZEN `subject_type` and `properties` the person gets. The file is re-read when it
changes, so `bridge users passwd` takes effect on a running server.

Passwords are hashed with argon2id (RFC 9106), memory-hard, through argon2-cffi. An
unknown name is checked against a dummy hash, so that both failures cost the same time and
answer the same words: nobody learns which names exist.
"""

from __future__ import annotations

import logging
import os
import re
import time
import tomllib
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .person import Person
from .step_up import LOCAL_PASSWORD_ACR, LOCAL_PASSWORD_AMR

log = logging.getLogger("bridge.front_door.accounts")

# RFC 9106's second recommended option (64 MiB, 3 passes), argon2-cffi's default profile.
HASHER = PasswordHasher()
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_DUMMY_HASH = HASHER.hash("no such account")


class AccountSettings(BaseModel):
    """One `[users.<name>]` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="The user name: the token's `sub`, the AuthZEN subject id.")
    password_hash: str = Field(repr=False, description="argon2id hash (`bridge users add`).")
    subject_type: str = Field("user", description="AuthZEN `subject.type`.")
    properties: dict[str, Any] = Field(
        default_factory=dict, description="AuthZEN `subject.properties`."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not USER_NAME.match(name):
            raise ValueError("user names are 1-64 of letters, digits and . _ @ -")
        return name

    @field_validator("password_hash")
    @classmethod
    def _argon2(cls, value: str) -> str:
        if not value.startswith("$argon2id$"):
            raise ValueError("password_hash must be an argon2id hash from `bridge users`")
        return value


class UsersFileError(Exception):
    pass


def parse_users_text(text: str, name: str) -> dict[str, AccountSettings]:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsersFileError(f"{name}: {exc}") from exc
    unknown = set(raw) - {"users"}
    if unknown:
        raise UsersFileError(f"{name}: unknown table(s) {sorted(unknown)}")
    accounts: dict[str, AccountSettings] = {}
    tables = raw.get("users", {})
    if not isinstance(tables, dict):
        raise UsersFileError(f"{name}: users must be a table")
    for user, table in tables.items():
        if not isinstance(table, dict):
            raise UsersFileError(f"{name}: users.{user}: not a table")
        try:
            accounts[user] = AccountSettings.model_validate({**table, "name": user})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            raise UsersFileError(f"{name}: users.{user}: {problems}") from None
    return accounts


class LocalAccounts:
    """The accounts of the users file, followed as it changes (the last good version stays
    when a new one does not parse)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._accounts: dict[str, AccountSettings] = {}
        self._follow()

    def _follow(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError:
            self._accounts, self._stamp = {}, None
            return
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._accounts = parse_users_text(self.path.read_text(encoding="utf-8"), str(self.path))
        except (OSError, UsersFileError) as exc:
            log.error("users file not reloaded, the last good one stays: %s", exc)

    def person(self, name: str) -> Person | None:
        """The person of the account `name` (who a CIBA `login_hint` names), without a
        sign-in: no authentication of theirs is claimed."""
        self._follow()
        account = self._accounts.get(name)
        if account is None:
            return None
        return Person(account.name, account.subject_type, dict(account.properties), "local")

    def verify(self, name: str, password: str) -> Person | None:
        """The person when `password` is theirs; None for a wrong password and for an
        unknown name alike (same work, same answer)."""
        self._follow()
        account = self._accounts.get(name)
        try:
            HASHER.verify(account.password_hash if account else _DUMMY_HASH, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if account is None:
            return None
        return Person(
            account.name,
            account.subject_type,
            dict(account.properties),
            "local",
            acr=LOCAL_PASSWORD_ACR,
            amr=LOCAL_PASSWORD_AMR,
            auth_time=int(time.time()),
        )
