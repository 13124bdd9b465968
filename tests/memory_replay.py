"""An in-memory `ReplayCache` for unit tests of client authentication and DPoP.

The SQLite implementation is exercised over HTTP by the token endpoint tests (replayed
assertion and proof `jti`s); here the checks around it are what is under test.
"""

from __future__ import annotations

import time


class MemoryReplay:
    """The `ReplayCache` protocol in a dict."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], float] = {}

    async def use_once(self, namespace: str, value: str, expires_at: float) -> bool:
        if self.seen.get((namespace, value), 0) > time.time():
            return False
        self.seen[(namespace, value)] = expires_at
        return True
