"""Which backend a `[storage] db` setting names: a SQLite file, or a PostgreSQL database."""

from __future__ import annotations

from collections.abc import Callable

from ..config import StorageSettings, is_postgres_url, sqlite_path
from .postgres import PostgresStore
from .sqlite import SqliteStore
from .store import JobStore
from .worker_slots import PostgresWorkerSlots, WorkerSlots


def open_store(storage: StorageSettings) -> JobStore:
    """The store for `storage.db` (not yet opened): `postgresql://...` or a SQLite path."""
    if is_postgres_url(storage.db):
        return PostgresStore(storage.db)
    return SqliteStore(sqlite_path(storage.db), storage.durability)


def is_shared(storage: StorageSettings) -> bool:
    """Whether other jobd nodes may use the same database at the same time."""
    return is_postgres_url(storage.db)


def worker_slots(store: JobStore, node: str) -> WorkerSlots | None:
    """The cluster's worker slots, when several nodes share the store's database."""
    if not isinstance(store, PostgresStore):
        return None
    store.node = node  # its claims name the node in the attempt history
    return PostgresWorkerSlots(store, node)


def listen_for_waiting(store: JobStore, wake: Callable[[str], None]) -> None:
    """Have `wake(job_type)` called when any node makes jobs of a type claimable."""
    if isinstance(store, PostgresStore):
        store.on_waiting = wake
