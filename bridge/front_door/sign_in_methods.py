"""The ways a deployment signs people in, from its configuration: local accounts
(`front_door.local_accounts`), the organisation's OpenID Provider
(`front_door.upstream_signin`), or both.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from ..problems import Problem
from ..settings import Settings, UpstreamSignInSettings
from ..store.contract import LoginThrottle
from ..upstream_signin import UpstreamSignIn
from .local_accounts import LocalAccounts
from .sign_in_throttle import SignInThrottle, ThrottleLimits


@dataclass(frozen=True)
class SignInMethods:
    accounts: LocalAccounts | None
    throttle: SignInThrottle
    upstream: UpstreamSignIn | None

    @classmethod
    def configured(
        cls, settings: Settings, store: LoginThrottle, http: httpx.AsyncClient
    ) -> SignInMethods:
        options = settings.front_door
        upstream = upstream_settings(settings)
        return cls(
            accounts=LocalAccounts(settings.resolve(options.users_file))
            if options.local_accounts
            else None,
            throttle=SignInThrottle(
                store,
                ThrottleLimits(
                    window_seconds=options.sign_in_window_seconds,
                    per_account=options.max_failures_per_account,
                    per_address=options.max_failures_per_address,
                ),
            ),
            upstream=UpstreamSignIn(upstream, http) if upstream is not None else None,
        )


def upstream_settings(settings: Settings) -> UpstreamSignInSettings | None:
    """`front_door.upstream_signin`, its secret file found beside the configuration file
    (like every other path in it)."""
    upstream = settings.front_door.upstream_signin
    if upstream is None or upstream.client_secret_file is None:
        return upstream
    return upstream.model_copy(
        update={"client_secret_file": settings.resolve(upstream.client_secret_file)}
    )


def sign_in_problems(settings: Settings) -> list[Problem]:
    """What `bridge check` (and a start) refuses: a client secret file that cannot be read."""
    upstream = upstream_settings(settings)
    if not settings.front_door.enabled or upstream is None:
        return []
    where = str(upstream.client_secret_file)
    try:
        upstream.read_client_secret()
    except OSError as exc:
        reason = f"cannot read front_door.upstream_signin's client secret: {exc.strerror}"
        return [Problem(where, None, reason)]
    except ValueError as exc:
        return [Problem(where, None, str(exc))]
    return []
