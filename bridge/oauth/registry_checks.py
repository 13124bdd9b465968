"""What a client registration may name: only `authorization_details` types and scopes that a
RAR profile defines. `bridge check`, `bridge serve`, `bridge clients add` and the running
bridge's reload of the registry file all use this one check, so a registration one of them
accepts is never refused by another."""

from __future__ import annotations

from collections.abc import Iterable

from ..problems import Problem
from ..rar.profiles import ProfileSet
from .clients import Client


def client_problems(clients: Iterable[Client], profiles: ProfileSet, where: str) -> list[Problem]:
    """One problem per type or scope no profile defines; `where` names the registry file."""
    problems: list[Problem] = []
    scopes = set(profiles.scope_values)
    for client in clients:
        for rar_type in client.authorization_details_types:
            if profiles.get(rar_type) is None:
                message = (
                    f"client {client.client_id!r} allows authorization_details type "
                    f"{rar_type!r}, which no profile defines"
                )
                problems.append(Problem(where, None, message))
        for scope in client.scopes:
            if scope not in scopes:
                message = (
                    f"client {client.client_id!r} allows scope {scope!r}, which no profile "
                    "maps (profiles' `scopes`)"
                )
                problems.append(Problem(where, None, message))
    return problems
