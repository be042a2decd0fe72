"""Group commit: one SQLite writer thread; writes that arrive together share one transaction.

Every write is a `(step, argument)` pair: `step(connection, [arguments...])` applies many
arguments of the same kind at once and returns one result per argument. While the thread
commits batch N, new writes queue up; they become batch N+1. So under load a single fsync
acknowledges hundreds of launches, claims and completions, and at light load a write waits
for nothing but its own commit.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ..errors import StorageError

log = logging.getLogger(__name__)

T = TypeVar("T")
Step = Callable[[sqlite3.Connection, Sequence[Any]], Sequence[Any]]
_Pending = tuple[Step, Any, "asyncio.Future[Any]"]


class GroupCommitWriter:
    """Serialises all writes through one connection on one thread, batching them."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobd-writer")
        self._connection: sqlite3.Connection | None = None
        self._pending: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.batches = 0
        self.writes = 0

    async def start(self) -> None:
        """Open the connection on the writer thread and start batching."""
        loop = asyncio.get_running_loop()
        self._connection = await loop.run_in_executor(self._executor, self._connect)
        self._task = asyncio.create_task(self._run(), name="jobd-writer")

    async def call(self, function: Callable[[sqlite3.Connection], T]) -> T:
        """Run `function` alone on the writer thread, outside any batch (migrations, setup)."""
        connection = self._connection
        assert connection is not None, "writer not started"
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, connection)

    def submit(self, step: Step, argument: Any) -> asyncio.Future[Any]:
        """Queue one write; the future resolves with its result once it is committed."""
        if self._closing:
            raise StorageError("the job store is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((step, argument, future))
        self._wakeup.set()
        return future

    async def close(self) -> None:
        """Commit what is queued, then stop the thread and close the connection."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        if self._connection is not None:
            connection = self._connection
            await asyncio.get_running_loop().run_in_executor(self._executor, connection.close)
        self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            batch, self._pending = self._pending, []
            if batch:
                outcomes = await loop.run_in_executor(self._executor, self._apply, batch)
                self.batches += 1
                self.writes += len(batch)
                for (_, _, future), (ok, value) in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
            if self._closing and not self._pending:
                return

    def _apply(self, batch: list[_Pending]) -> list[tuple[bool, Any]]:
        """Thread side: apply a whole batch in one transaction, isolating a failing write."""
        connection = self._connection
        assert connection is not None
        try:
            results = self._transaction(connection, [(step, arg) for step, arg, _ in batch])
            return [(True, result) for result in results]
        except Exception as exc:
            if len(batch) == 1:
                return [(False, StorageError(f"write failed: {exc}"))]  # nothing to isolate
            log.warning("group commit failed; applying its writes one by one", exc_info=True)
        outcomes: list[tuple[bool, Any]] = []
        for step, argument, _ in batch:
            try:
                outcomes.append((True, self._transaction(connection, [(step, argument)])[0]))
            except Exception as exc:
                outcomes.append((False, StorageError(f"write failed: {exc}")))
        return outcomes

    @staticmethod
    def _transaction(connection: sqlite3.Connection, writes: list[tuple[Step, Any]]) -> list[Any]:
        # Group the writes by step, in order of first appearance, so each step runs once with
        # all its arguments (executemany). Writes to one job are never in one batch together:
        # every caller awaits one write before it submits the next for the same job.
        groups: dict[Step, list[int]] = {}
        for index, (step, _) in enumerate(writes):
            groups.setdefault(step, []).append(index)
        results: list[Any] = [None] * len(writes)
        connection.execute("BEGIN IMMEDIATE")
        try:
            for step, indexes in groups.items():
                values = step(connection, [writes[i][1] for i in indexes])
                for i, value in zip(indexes, values, strict=True):
                    results[i] = value
            connection.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (a full disk does: SQLITE_FULL); a ROLLBACK
            # then fails and would mask the real error, so only roll back what is open.
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return results
