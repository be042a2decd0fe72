"""Group commit on asyncio: concurrent writes of one kind share one transaction.

The SQLite backend batches on its writer thread (`writer.py`); a networked database needs no
thread, only a queue per kind of write. While one transaction of a kind runs, new writes of
that kind wait; when it commits, all of them go in the next one. A node is then not capped at
one commit (one network round trip and one fsync on the server) per job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

A = TypeVar("A")
R = TypeVar("R")
C = TypeVar("C")

# A step applies many arguments of one kind inside an open transaction, one result each.
Step = Callable[[C, Sequence[Any]], Awaitable[list[Any]]]


class GroupCommit(Generic[C]):
    """Queues writes per step and runs each queue's contents as one transaction."""

    def __init__(self, transaction: Callable[[Step[C], Sequence[Any]], Awaitable[list[Any]]]):
        # `transaction(step, arguments)` opens a transaction, runs the step, commits.
        self._transaction = transaction
        self._queues: dict[Step[C], list[tuple[Any, asyncio.Future[Any]]]] = {}
        self._draining: dict[Step[C], asyncio.Task[None]] = {}
        self.batches = 0  # transactions run
        self.writes = 0  # writes they carried

    async def submit(self, step: Step[C], argument: Any) -> Any:
        """Queue one write; returns its result once its transaction committed."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(step, []).append((argument, future))
        if step not in self._draining:
            self._draining[step] = asyncio.create_task(self._drain(step))
        return await future

    async def _drain(self, step: Step[C]) -> None:
        queue = self._queues[step]
        try:
            while queue:
                group = queue[:]
                queue.clear()
                try:
                    results = await self._transaction(step, [argument for argument, _ in group])
                except Exception as exc:  # every write of the group failed with it
                    for _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self.batches += 1
                self.writes += len(group)
                for (_, future), result in zip(group, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            del self._draining[step]

    async def idle(self) -> None:
        """Wait until every queued write is committed (or failed)."""
        await asyncio.sleep(0)  # tasks ready to run may queue writes first
        while self._draining:
            await asyncio.gather(*self._draining.values(), return_exceptions=True)
