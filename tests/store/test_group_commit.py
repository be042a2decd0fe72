"""The group-commit writer: what a write's early result promises, and what readers see."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from provena_jobd.queue.writer import GroupCommitWriter


class HeldCommits(sqlite3.Connection):
    """A connection whose COMMITs wait until the test lets them through."""

    go = threading.Event()

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT":
            assert self.go.wait(5), "the test never released the commit"
        return super().execute(sql, *args)


def _set(connection: sqlite3.Connection, values: Sequence[int]) -> list[bool]:
    """Set the one row to each value, only if it still holds the previous one (a guard)."""
    return [
        connection.execute("UPDATE t SET v = ? WHERE v = ?", (value, value - 1)).rowcount == 1
        for value in values
    ]


def _read(path: Path) -> int:
    with sqlite3.connect(path) as reader:
        return int(reader.execute("SELECT v FROM t").fetchone()[0])


async def test_an_early_write_answers_before_its_commit_and_is_seen_only_after(
    tmp_path: Path,
) -> None:
    path = tmp_path / "w.db"
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode = WAL")
        setup.execute("CREATE TABLE t (v INTEGER)")
        setup.execute("INSERT INTO t VALUES (0)")

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, factory=HeldCommits
        )
        connection.execute("PRAGMA journal_mode = WAL")
        return connection

    HeldCommits.go.clear()
    writer = GroupCommitWriter(connect)
    await writer.start()
    try:
        committed: list[bool] = []
        applied = writer.submit_early(_set, 1, committed.append)
        late = writer.submit(_set, 5)  # same batch; its guard does not hold
        assert await asyncio.wait_for(applied, 5) is True
        assert committed == [] and not late.done()
        assert await asyncio.to_thread(_read, path) == 0  # not committed: nobody sees it
        HeldCommits.go.set()
        assert await late is False
        assert committed == [True]
        assert await asyncio.to_thread(_read, path) == 1
    finally:
        HeldCommits.go.set()
        await writer.close()
