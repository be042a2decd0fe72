"""The group-commit writer: what a write's early result promises, and what readers see."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from provena_jobd.queue.writer import GroupCommitWriter, plan


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


def _step(name: str) -> Any:
    """A named stand-in step (plan only looks at identity)."""

    def step(connection: sqlite3.Connection, arguments: Sequence[Any]) -> list[None]:
        return [None] * len(arguments)

    step.__name__ = name
    return step


def test_a_batch_applies_routine_steps_by_rank_and_barriers_in_submission_order() -> None:
    launch, start, finish, claim, cancel, rescue = (
        _step(n) for n in ("launch", "start", "finish", "claim", "cancel", "rescue")
    )
    routine = {launch: 0, start: 1, finish: 2, claim: 3}
    writes = [
        (claim, "c1"),
        (finish, "f1"),
        (start, "s2"),
        (finish, "f2"),
        (launch, "l1"),
        (cancel, "x1"),
        (cancel, "x2"),
        (start, "s3"),
        (rescue, "r1"),
        (claim, "c2"),
    ]
    planned = [(step.__name__, indexes) for step, indexes in plan(writes, routine)]
    assert planned == [
        # The run before the first barrier, by rank: launches, starts, holders' writes, claims.
        ("launch", [4]),
        ("start", [2]),
        ("finish", [1, 3]),
        ("claim", [0]),
        # Consecutive barriers of one step share a group; each barrier ends a run.
        ("cancel", [5, 6]),
        ("start", [7]),
        ("rescue", [8]),
        ("claim", [9]),
    ]
    # Without ranks: grouped by step in order of first appearance, as before.
    assert [s.__name__ for s, _ in plan(writes, None)] == [
        "claim",
        "finish",
        "start",
        "launch",
        "cancel",
        "rescue",
    ]


async def test_only_barrier_steps_count_as_barriers(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE t (v INTEGER)")
        setup.execute("INSERT INTO t VALUES (0)")

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    routine_step, barrier_step = _step("routine"), _step("barrier")
    writer = GroupCommitWriter(connect, {routine_step: 0})
    await writer.start()
    try:
        await writer.submit(routine_step, 1)
        assert writer.barriers == 0
        await writer.submit(barrier_step, 1)
        assert writer.barriers == 1
        seen: list[Any] = []
        writer.submit_detached(_set, 1, seen.append)  # not routine either
        assert writer.barriers == 2
        await writer.idle()
        await writer.submit(routine_step, 2)  # one more batch: the detached one is committed
        assert seen == [True] and _read(path) == 1
    finally:
        await writer.close()
