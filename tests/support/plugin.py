"""Every service fixture in one pytest plugin.

Enable them in a test module (or once, in the root conftest) with
`pytest_plugins = ["tests.support.plugin"]`. Each server starts only when a test first asks
for its fixture, so loading the plugin costs nothing for tests that use none of them.

| fixture             | scope    | yields                                              |
| ------------------- | -------- | --------------------------------------------------- |
| `postgres`          | session  | `PostgresServer` (host, port, user, password, url)  |
| `postgres_database` | module   | `PostgresDatabase`: a fresh database for the module |
| `browser`           | session  | Playwright `Browser` (headless Debian Chromium)     |
| `browser_context`   | function | a fresh `BrowserContext`, held to loopback          |
| `page`              | function | a `Page` in that context                            |
| `smtp`              | session  | `SmtpServer` collecting received messages           |
| `oidc_provider`     | session  | `OidcProvider`: issuer, clients, accounts           |
"""

from tests.support.browser import _browser, _browser_context, _page
from tests.support.oidc_provider import _oidc_provider
from tests.support.postgres import _postgres, _postgres_database
from tests.support.smtp import _smtp

__all__ = [
    "_browser",
    "_browser_context",
    "_oidc_provider",
    "_page",
    "_postgres",
    "_postgres_database",
    "_smtp",
]
