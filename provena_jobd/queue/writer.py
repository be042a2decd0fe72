"""Group commit: one SQLite writer thread; writes that arrive together share one transaction.

Every write is a `(step, argument)` pair: `step(connection, [arguments...])` applies many
arguments of the same kind at once and returns one result per argument. While the thread
commits batch N, new writes queue up; they become batch N+1. So under load a single fsync
acknowledges hundreds of launches, claims and completions, and at light load a write waits
for nothing but its own commit.

`submit_early` gives a future that resolves as soon as the write has run inside the open
transaction, before the commit: its result (did the guard hold?) is final then, because every
write goes through this one connection in order. Readers still see it only after the commit,
and a callback is told then. Only writes whose loss in a crash is harmless may be acted on
early (see `SqliteStore.start`). Only a batch with few of them answers early: when many
share a batch, its commit is already shared by many jobs, and waking their callers mid-commit
only makes the event loop and this thread take turns at the GIL.

Order inside a batch. Writes of one step run together (one `executemany`), so a batch is not
applied in the order it was submitted. The writer is given the *routine* steps, each with a
rank: steps that only add jobs, claim them, or change jobs their caller holds by lease. Inside
a run of routine writes they are applied by rank (a job's start before its finish, claims
last, so they see the jobs the batch launched or requeued). Every other step is a *barrier*:
it is applied after everything submitted before it and before everything submitted after it,
and it bumps `barriers`. So a caller that reads `barriers` when it submits a claim and finds
it unchanged later knows that nothing but routine writes has touched the claimed jobs since
(see `SqliteStore.start_at_once`).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ..errors import StorageError

log = logging.getLogger(__name__)

T = TypeVar("T")
Step = Callable[[sqlite3.Connection, Sequence[Any]], Sequence[Any]]
# (step, argument, its future or None if detached, resolved early?, called with the result
# after the commit)
EARLY_AT_MOST = 32  # early writes in one batch beyond which they answer at the commit
_Pending = tuple[Step, Any, "asyncio.Future[Any] | None", bool, "Callable[[Any], None] | None"]


class GroupCommitWriter:
    """Serialises all writes through one connection on one thread, batching them."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        routine: Mapping[Step, int] | None = None,
        before_alone: Callable[[list[Any]], None] | None = None,
    ) -> None:
        self._connect = connect
        # Told a failed batch's arguments before they are applied one by one (thread side).
        self._before_alone = before_alone
        # Routine steps and their rank inside a run of routine writes; None: every step is
        # routine and keeps the order of first appearance (no barriers).
        self._routine = routine
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobd-writer")
        self._connection: sqlite3.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._applying = False  # a batch is in the writer thread now
        self.batches = 0
        self.writes = 0
        self.barriers = 0  # barrier writes submitted so far (see the module docstring)
        self.taken = 0  # batches taken from the queue so far (the next one is still open)

    async def start(self) -> None:
        """Open the connection on the writer thread and start batching."""
        loop = self._loop = asyncio.get_running_loop()
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
        future = self._queue(step, argument, False, None)
        assert future is not None
        return future

    def submit_early(
        self, step: Step, argument: Any, committed: Callable[[Any], None]
    ) -> asyncio.Future[Any]:
        """Queue one write; the future resolves once it is applied, before the commit.

        `committed(result)` is called once it is committed (not if its transaction failed).
        No second future per write: a batch can hold hundreds of them.
        """
        future = self._queue(step, argument, True, committed)
        assert future is not None
        return future

    def submit_detached(self, step: Step, argument: Any, committed: Callable[[Any], None]) -> None:
        """Queue one write nobody awaits: `committed(result)` is called once it is committed.

        If its transaction fails, the failure is logged (there is no caller to tell).
        """
        self._queue(step, argument, False, committed, detached=True)

    def _queue(
        self,
        step: Step,
        argument: Any,
        early: bool,
        committed: Callable[[Any], None] | None,
        detached: bool = False,
    ) -> asyncio.Future[Any] | None:
        if self._closing:
            raise StorageError("the job store is closed")
        future: asyncio.Future[Any] | None = None
        if not detached:
            future = asyncio.get_running_loop().create_future()
        if self._routine is not None and step not in self._routine:
            self.barriers += 1
        self._pending.append((step, argument, future, early, committed))
        self._wakeup.set()
        return future

    async def idle(self, quiet_turns: int = 3) -> None:
        """Return once the writer has had nothing to do for `quiet_turns` turns of the event
        loop: every write submitted before, or by tasks that were ready to run meanwhile, is
        applied. Tests await this instead of sleeping for a write to reach the thread."""
        quiet = 0
        while quiet < quiet_turns:
            await asyncio.sleep(0)  # one turn of the loop: ready tasks may submit writes
            if self._pending or self._applying:
                quiet = 0
            else:
                quiet += 1

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
            # One pass of the event loop first, so that the callers the last commit woke can
            # queue their next writes (a finished job's next claim or start) into this batch.
            await asyncio.sleep(0)
            self._wakeup.clear()
            batch, self._pending = self._pending, []
            self.taken += 1
            if batch:
                self._applying = True
                try:
                    outcomes = await loop.run_in_executor(self._executor, self._apply, batch)
                finally:
                    self._applying = False
                self.batches += 1
                self.writes += len(batch)
                for (step, _, future, _, committed), (ok, value) in zip(
                    batch, outcomes, strict=True
                ):
                    if ok and committed is not None:
                        committed(value)
                    if future is None:
                        if not ok:
                            log.error("a detached write (%s) failed: %s", step.__name__, value)
                        continue
                    if future.done():
                        continue  # resolved early, or its caller gave up
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
        early = [(i, future) for i, (_, _, future, soon, _) in enumerate(batch) if soon and future]
        if len(early) > EARLY_AT_MOST:
            early = []
        try:
            results = self._transaction(
                connection,
                [(step, arg) for step, arg, _, _, _ in batch],
                early,
                self._resolve,
                self._routine,
            )
            return [(True, result) for result in results]
        except Exception as exc:
            if len(batch) == 1:
                return [(False, StorageError(f"write failed: {exc}"))]  # nothing to isolate
            log.warning("group commit failed; applying its writes one by one", exc_info=True)
        if self._before_alone is not None:
            self._before_alone([argument for _, argument, _, _, _ in batch])
        outcomes: list[tuple[bool, Any]] = []
        for step, argument, _, _, _ in batch:
            try:
                outcomes.append(
                    (True, self._transaction(connection, [(step, argument)], routine=None)[0])
                )
            except Exception as exc:
                outcomes.append((False, StorageError(f"write failed: {exc}")))
        return outcomes

    def _resolve(self, applied: list[tuple[asyncio.Future[Any], Any]]) -> None:
        """Thread side: hand applied writes' results to the event loop before the commit.

        One call for the whole batch: each thread-safe call wakes the loop.
        """
        assert self._loop is not None

        def settle() -> None:
            for future, value in applied:
                if not future.done():
                    future.set_result(value)

        self._loop.call_soon_threadsafe(settle)

    @staticmethod
    def _transaction(
        connection: sqlite3.Connection,
        writes: list[tuple[Step, Any]],
        early: Sequence[tuple[int, asyncio.Future[Any]]] = (),
        resolve: Callable[[list[tuple[asyncio.Future[Any], Any]]], None] | None = None,
        routine: Mapping[Step, int] | None = None,
    ) -> list[Any]:
        results: list[Any] = [None] * len(writes)
        connection.execute("BEGIN IMMEDIATE")
        try:
            for step, indexes in plan(writes, routine):
                values = step(connection, [writes[i][1] for i in indexes])
                for i, value in zip(indexes, values, strict=True):
                    results[i] = value
            if resolve is not None and early:
                resolve([(future, results[i]) for i, future in early])
            connection.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (a full disk does: SQLITE_FULL); a ROLLBACK
            # then fails and would mask the real error, so only roll back what is open.
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return results


def plan(
    writes: Sequence[tuple[Step, Any]], routine: Mapping[Step, int] | None
) -> list[tuple[Step, list[int]]]:
    """The order a batch is applied in: (step, indexes of its writes), one executemany each.

    Runs of routine writes are grouped by step and ordered by rank (ties: first appearance);
    a barrier ends the run before it, and consecutive barriers of one step share a group.
    Without `routine`, every step is grouped in order of first appearance.
    """
    planned: list[tuple[Step, list[int]]] = []
    run: dict[Step, list[int]] = {}

    def end_run() -> None:
        if routine is None:
            planned.extend(run.items())
        else:
            planned.extend(sorted(run.items(), key=lambda group: routine[group[0]]))
        run.clear()

    for index, (step, _) in enumerate(writes):
        if routine is None or step in routine:
            run.setdefault(step, []).append(index)
            continue
        end_run()
        if planned and planned[-1][0] is step and planned[-1][1][-1] == index - 1:
            planned[-1][1].append(index)  # the barrier just before was this step too
        else:
            planned.append((step, [index]))
    end_run()
    return planned
