"""Real servers for the test suite, installed and started by the tests themselves.

The project's tests use real parts, never stand-ins for them: a PostgreSQL server, a headless
Chromium driven by Playwright, an SMTP server, and an independent OpenID Provider. Each module
here installs what it needs on a fresh machine (Debian packages, npm packages), starts a private
instance on a free loopback port for the test session, and stops it at the end.

A missing server never lets a test pass: every set-up failure raises `ServiceSetupError`, which
pytest reports as an error at fixture set-up, so the run fails with the reason in the message.

Fixtures: `tests.support.plugin` lists them all; a test module (or the root conftest) enables
them with `pytest_plugins = ["tests.support.plugin"]`, or imports only those it uses.
"""

from tests.support._common import ServiceSetupError

__all__ = ["ServiceSetupError"]
