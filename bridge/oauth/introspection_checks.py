"""What else decides, at introspection (RFC 7662), whether one of the bridge's access tokens is
still active, beyond its signature, issuer, expiry and the revoked `jti`s: checks that other
parts install with `OAuth.install_introspection_check`, asked in order, each only while the
ones before it said yes. Continuous evaluation (`bridge.events`) is one: a subject whose
session was revoked, an approval that no longer stands, a permit the policies removed.
"""

from __future__ import annotations

from typing import Any, Protocol


class IntrospectionCheck(Protocol):
    async def active(self, claims: dict[str, Any]) -> bool:
        """Whether the access token of `claims` (valid, unexpired, not revoked) is still
        active; False makes introspection answer `{"active": false}`. For example:

            class NotMallory:
                async def active(self, claims: dict[str, Any]) -> bool:
                    return claims.get("sub") != "mallory"

            oauth.install_introspection_check(NotMallory())
        """
        ...
