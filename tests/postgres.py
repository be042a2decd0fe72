"""A throwaway PostgreSQL database for the tests that run jobd on PostgreSQL.

Each test run creates its own database on the server (127.0.0.1:5432, user postgres, trust
auth, or `JOBD_TEST_POSTGRES`) and drops it afterwards. Without a server the tests are
skipped with the reason, except in CI (`CI=true` or `JOBD_REQUIRE_POSTGRES=1`), where they
fail: CI promises the server, so its absence is a broken build, not a reason to test less.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import pytest

# Read at import: the autouse fixture in conftest.py clears JOBD_* for each test.
SERVER = os.environ.get("JOBD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
REQUIRED = os.environ.get("CI") == "true" or os.environ.get("JOBD_REQUIRE_POSTGRES") == "1"
TABLES = (
    "jobs, job_attempts, batches, records, meta, worker_slots, files, "
    "launch_keys, paused_types, start_windows, schedule_fires"
)


def _run(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run on a loop of its own (a fixture may be set up while a test's loop runs)."""
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, coroutine).result()


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(f"{SERVER}/postgres", timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def _unavailable(reason: str) -> None:
    message = f"PostgreSQL at {SERVER} is not reachable ({reason})"
    if REQUIRED:
        pytest.fail(message + "; CI requires it", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """The URL of a database made for this test run, dropped at its end."""
    name = f"jobd_test_{uuid.uuid4().hex[:12]}"
    try:
        _run(_admin(f"CREATE DATABASE {name}"))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        _unavailable(str(exc) or type(exc).__name__)
    yield f"{SERVER}/{name}"
    _run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def empty(url: str) -> None:
    """Delete every job, batch, record, secret and flow-control row (between tests sharing the
    database)."""
    _run(_truncate(url))


async def _truncate(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        exists = await connection.fetchval("SELECT to_regclass('jobs') IS NOT NULL")
        if exists:
            await connection.execute(f"TRUNCATE {TABLES}")
    finally:
        await connection.close()


@pytest.fixture
def fresh_database(postgres_database: str) -> Iterator[str]:
    """A second, empty database (no schema yet) for one test, dropped after it."""
    name = f"{postgres_database.rsplit('/', 1)[1]}_fresh"
    _run(_admin(f"CREATE DATABASE {name}"))
    yield f"{SERVER}/{name}"
    _run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
