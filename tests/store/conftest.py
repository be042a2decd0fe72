"""Fixtures of the store contract suite: every backend, on a database a test may reopen."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from provena_jobd.queue.postgres import PostgresStore
from provena_jobd.queue.sqlite import SqliteStore
from provena_jobd.queue.store import JobStore
from tests.postgres import empty

from .contract_helpers import StoreFactory


@pytest.fixture(params=["sqlite", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """A factory of stores on one database, so a test can close and reopen it."""
    if request.param == "sqlite":
        return lambda: SqliteStore(tmp_path / "jobd.db")
    url: str = request.getfixturevalue("postgres_database")
    empty(url)
    return lambda: PostgresStore(url)


@pytest.fixture
async def store(make_store: StoreFactory) -> AsyncIterator[JobStore]:
    """An open store on a fresh database; closed after the test."""
    opened = make_store()
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """An open SQLite store, for what only SQLite does (one process owns the file)."""
    opened = SqliteStore(tmp_path / "jobd.db")
    await opened.open()
    yield opened
    await opened.close()
