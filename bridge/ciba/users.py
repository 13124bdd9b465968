"""Who a `login_hint` names (CIBA Core §7.1): a user the bridge knows, or `unknown_user_id`.

- a local account (`front_door.users_file`): that person, with the account's subject type
  and properties, as the password sign-in would make her;
- else, when people sign in at the organisation's provider (`front_door.upstream_signin`),
  any subject: the hint is her name there (the provider's `name_claim`), of the configured
  subject type, and she must sign in as that very subject to answer (her page checks it).

The bridge cannot ask the provider whether a subject exists, so with upstream sign-in a hint
naming nobody is only found out when nobody signs in to answer: the request expires.
"""

from __future__ import annotations

from ..front_door.local_accounts import LocalAccounts
from ..front_door.person import Person
from ..grammar import has_control_character
from ..settings import Settings
from .errors import UnknownUserId

MAX_HINT = 255


class KnownUsers:
    def __init__(self, settings: Settings, accounts: LocalAccounts | None) -> None:
        self._accounts = accounts  # the front door's: one follower of the users file
        upstream = settings.front_door.upstream_signin
        self._upstream_type = upstream.subject_type if upstream is not None else None

    def person(self, login_hint: str) -> Person:
        """The user `login_hint` names; `UnknownUserId` when the bridge knows nobody so."""
        if len(login_hint) > MAX_HINT or has_control_character(login_hint):
            raise UnknownUserId("login_hint names no user this bridge knows")
        if self._accounts is not None:
            found = self._accounts.person(login_hint)
            if found is not None:
                return found
        if self._upstream_type is not None and login_hint.strip() == login_hint:
            return Person(name=login_hint, subject_type=self._upstream_type, method="oidc")
        raise UnknownUserId("login_hint names no user this bridge knows")
