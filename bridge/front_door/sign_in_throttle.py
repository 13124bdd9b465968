"""Throttling sign-in attempts, per account and per client address, in the store: the
counts hold across replicas (a guess at each of five replicas counts five times).

A name or address over its limit is refused before the password is checked, with the same
words whether the account exists or not; a success clears the account's count (not the
address's, which may be shared by many people behind one proxy).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from ..store.contract import LoginThrottle


@dataclass(frozen=True)
class ThrottleLimits:
    window_seconds: float
    per_account: int
    per_address: int


class SignInThrottle:
    def __init__(self, store: LoginThrottle, limits: ThrottleLimits) -> None:
        self._store = store
        self._limits = limits

    async def refused(self, name: str, address: str) -> bool:
        now = time.time()
        if await self._store.login_failures(_key("account", name), now) >= self._limits.per_account:
            return True
        by_address = await self._store.login_failures(_key("address", address), now)
        return by_address >= self._limits.per_address

    async def failed(self, name: str, address: str) -> None:
        now = time.time()
        window = self._limits.window_seconds
        await self._store.add_login_failure(_key("account", name), now, window)
        await self._store.add_login_failure(_key("address", address), now, window)

    async def succeeded(self, name: str) -> None:
        await self._store.clear_login_failures(_key("account", name))


def _key(kind: str, value: str) -> str:
    # Hashed: the store keeps counters, not a list of names and addresses people typed.
    return f"{kind}:" + hashlib.sha256(value.lower().encode("utf-8", "replace")).hexdigest()
