"""What every backend's schema migrations share: the two ways a database's recorded schema
version can be wrong for this bridge.

Each backend numbers its migrations the same way (`store/sqlite/migrations.py`,
`store/postgres/migrations.py`): version N means the same tables, columns and indexes on
both, so `bridge db status` reads alike whichever database a deployment uses.
"""

from __future__ import annotations


class SchemaTooNew(Exception):
    """The database was migrated by a newer bridge: an older one must not write into a
    schema it does not understand."""


class SchemaBehind(Exception):
    """The database needs migrations and the store was told not to apply them."""
