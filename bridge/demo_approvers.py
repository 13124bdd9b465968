"""A local stand-in for an identity provider, so the demo's approvers can get tokens.

Approvers authenticate with bearer JWTs from a trusted issuer. A real deployment names its
identity provider in `[[oauth.trusted_issuers]]` and `access_requests.approver_issuer`; the
local demo instead sets `access_requests.demo_approver_key_file`, and the bridge then trusts
the issuer `DEMO_ISSUER` signing with that key, whose tokens `bridge approvers token SUB`
prints. Never use this in production: whoever can read the key file can approve anything.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey

from .settings import DEMO_APPROVER_ISSUER, Settings, TrustedIssuerSettings

DEMO_ISSUER = DEMO_APPROVER_ISSUER


def demo_key(path: Path) -> ECKey:
    """The demo issuer's private key; made (file mode 0600) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = ECKey.generate_key("P-256", auto_kid=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # made by another process in the meantime: use theirs
        else:
            with os.fdopen(fd, "w") as out:
                json.dump(key.as_dict(private=True), out)
    return ECKey.import_key(json.loads(path.read_text()))


def with_demo_issuer(settings: Settings) -> Settings:
    """The settings with the demo issuer trusted and chosen for approvers, when configured."""
    key_file = settings.access_requests.demo_approver_key_file
    if key_file is None:
        return settings
    key = demo_key(settings.resolve(key_file))
    issuer = TrustedIssuerSettings(
        issuer=DEMO_ISSUER, jwks={"keys": [key.as_dict(private=False)]}, subject_type="user"
    )
    oauth = settings.oauth.model_copy(
        update={"trusted_issuers": [*settings.oauth.trusted_issuers, issuer]}
    )
    access = settings.access_requests.model_copy(
        update={"approver_issuer": settings.access_requests.approver_issuer or DEMO_ISSUER}
    )
    return settings.model_copy(update={"oauth": oauth, "access_requests": access})


def mint(settings: Settings, sub: str, minutes: int) -> str:
    key_file = settings.access_requests.demo_approver_key_file
    if key_file is None:
        raise ValueError("access_requests.demo_approver_key_file is not configured")
    key = demo_key(settings.resolve(key_file))
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": DEMO_ISSUER,
        "sub": sub,
        "aud": settings.approver_audience,
        "iat": now,
        "exp": now + minutes * 60,
    }
    return jwt.encode({"alg": "ES256", "kid": key.kid, "typ": "JWT"}, claims, key)


def register(commands: Any) -> None:
    approvers = commands.add_parser("approvers", help="local demo approver tokens")
    actions = approvers.add_subparsers(dest="approvers_command", required=True)
    token = actions.add_parser("token", help="print a demo approver's bearer token")
    token.add_argument("sub", help="the approver, e.g. manager-1")
    token.add_argument(
        "--minutes", type=_positive, default=60, help="lifetime in minutes (default 60)"
    )
    token.add_argument("--config", type=Path, help="TOML configuration")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of minutes") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("a token must live at least one minute")
    return value


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        print(mint(settings, args.sub, args.minutes))
    except ValueError as exc:
        print(f"bridge approvers token: {exc}", file=sys.stderr)
        return 1
    return 0
