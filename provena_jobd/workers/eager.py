"""Run a coroutine at once, up to its first wait; only if it does wait, finish it in a task.

The handler of a short job often returns without ever waiting (a wake-up, a no-op, a job
whose work is all in memory). Giving each such handler its own task, a shield and a timeout
timer cost more event-loop work than the job itself. `start_eagerly` runs the coroutine's
first step in the caller, as Python 3.12's eager tasks do, and on 3.11 too: a coroutine that
returns is done with no task at all; one that waits is handed, mid-way, to a task that
continues it exactly where it stopped.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine, Generator
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")


class Finished:
    """A coroutine that returned in its first step, and what it returned."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def start_eagerly(coroutine: Coroutine[Any, Any, T], name: str) -> Finished | asyncio.Task[T]:
    """Run `coroutine` until it first waits: `Finished` if it returned by then, else a task
    (named `name`) that goes on from where it stopped.

    The first step runs in a copy of the caller's context, and the task keeps that copy, so
    context variables behave as in any task. What the coroutine raises in its first step
    propagates to the caller.
    """
    context = contextvars.copy_context()
    try:
        waiting_on = context.run(coroutine.send, None)
    except StopIteration as returned:
        return Finished(returned.value)
    loop = asyncio.get_running_loop()
    return loop.create_task(_Resumed(coroutine, waiting_on), name=name, context=context)


class _Resumed(Coroutine[Any, Any, T]):
    """A started coroutine, as a coroutine a task can run: its first `send` hands the task
    what the coroutine already waits on; everything else is passed straight through."""

    __slots__ = ("_coroutine", "_started", "_waiting_on")

    def __init__(self, coroutine: Coroutine[Any, Any, T], waiting_on: Any) -> None:
        self._coroutine = coroutine
        self._waiting_on = waiting_on
        self._started = False

    def send(self, value: Any) -> Any:
        """The task's step: the first gives it the awaited future back; then resume."""
        if not self._started:
            self._started = True
            waiting_on, self._waiting_on = self._waiting_on, None
            return waiting_on
        return self._coroutine.send(value)

    def throw(
        self,
        typ: type[BaseException] | BaseException,
        val: BaseException | object = None,
        tb: TracebackType | None = None,
    ) -> Any:
        """Raise into the coroutine where it waits (a cancel, even before the first step)."""
        self._started = True
        self._waiting_on = None
        if val is None and tb is None:
            return self._coroutine.throw(typ)
        return self._coroutine.throw(typ, val, tb)  # type: ignore[arg-type]

    def close(self) -> None:
        """Close the coroutine."""
        self._coroutine.close()

    def __await__(self) -> Generator[Any, None, T]:
        """Awaiting it directly is not supported: it exists for a task to run."""
        raise TypeError("a resumed coroutine is only run by its task")
