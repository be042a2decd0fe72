"""Which backend a `[storage] db` setting names: a SQLite file, or a PostgreSQL database."""

from __future__ import annotations

from ..config import StorageSettings, is_postgres_url, sqlite_path
from .store import JobStore


def open_store(storage: StorageSettings) -> JobStore:
    """The store for `storage.db` (not yet opened): `postgresql://...` or a SQLite path."""
    if is_postgres_url(storage.db):
        # Imported here: asyncpg is an extra (`provena-jobd[postgres]`), needed only for this.
        from .postgres import PostgresStore

        return PostgresStore(storage.db)
    from .sqlite import SqliteStore

    return SqliteStore(sqlite_path(storage.db), storage.durability)


def is_shared(storage: StorageSettings) -> bool:
    """Whether other jobd nodes may use the same database at the same time."""
    return is_postgres_url(storage.db)
