"""A full disk: a clear 503 with the real reason, nothing acknowledged that is not stored, and
recovery without a restart once there is room again (issue 18, item 7).

SQLite's `max_page_count` makes the database "full" at its current size, which takes the same
error path (SQLITE_FULL, "database or disk is full") as a full file system.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from provena_jobd.clock import FakeClock
from provena_jobd.queue.sqlite import SqliteStore
from provena_jobd.server import MAINTAIN_INTERVAL_S, JobdServer
from tests.helpers import eventually
from tests.http.api_helpers import WAKE, call
from tests.http.api_helpers import client as client
from tests.http.api_helpers import server as server


async def fill_up(store: SqliteStore, full: bool) -> None:
    """Cap the database at its current size (full), or lift the cap."""

    def cap(connection: sqlite3.Connection) -> None:
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count = {pages if full else 1_000_000_000}")

    await store.writer.call(cap)


async def test_launches_on_a_full_disk_get_503_with_the_reason_and_resume_after(
    client: TestClient[Any, Any], server: JobdServer
) -> None:
    assert isinstance(server.store, SqliteStore)
    await fill_up(server.store, full=True)
    big = {**WAKE, "job_payload": {"reason": "x" * 20_000}}

    refused = []
    for _ in range(5):
        response = await client.post("/jobs/admin/launch", json=big)
        refused.append((response.status, (await response.json())["detail"]))
    assert {status for status, _ in refused} == {503}
    assert all("database or disk is full" in detail for _, detail in refused), refused
    listed = await call(client, "POST", "/jobs/admin/list", 200, json={})
    assert listed["jobs"] == [], "nothing refused was stored"

    await fill_up(server.store, full=False)
    launched = await call(client, "POST", "/jobs/admin/launch", 200, json=big)
    fetched = await call(
        client, "GET", "/jobs/admin/fetch", 200, params={"session_id": launched["session_id"]}
    )
    assert fetched["job"]["status"] == "PENDING"


async def test_jobd_checkpoints_and_truncates_its_wal_itself(
    client: TestClient[Any, Any], server: JobdServer, tmp_path: Path
) -> None:
    wal = tmp_path / "jobd.db-wal"
    big = {**WAKE, "job_payload": {"reason": "x" * 20_000}}
    for _ in range(50):
        await call(client, "POST", "/jobs/admin/launch", 200, json=big)
    assert wal.stat().st_size > 1_000_000
    assert isinstance(server.clock, FakeClock)

    await server.clock.advance(MAINTAIN_INTERVAL_S)

    await eventually(lambda: _async(wal.stat().st_size == 0), what="the WAL to be truncated")
    listed = await call(client, "POST", "/jobs/admin/list", 200, json={"limit": 100})
    assert len(listed["jobs"]) == 50


async def _async(value: bool) -> bool:
    return value
