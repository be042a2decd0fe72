"""A handler runs at once up to its first wait; one that waits goes on in a task, unchanged."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from provena_jobd.workers.eager import Finished, start_eagerly

where: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="caller")


async def test_a_coroutine_that_never_waits_is_done_without_a_task() -> None:
    ran: list[str] = []

    async def returns_at_once() -> int:
        ran.append("ran")
        return 7

    tasks_before = len(asyncio.all_tasks())
    started = start_eagerly(returns_at_once(), "handler-x")
    assert isinstance(started, Finished) and started.value == 7
    assert ran == ["ran"]  # before the caller awaited anything
    assert len(asyncio.all_tasks()) == tasks_before


async def test_a_coroutine_that_waits_goes_on_in_a_named_task_where_it_stopped() -> None:
    steps: list[str] = []
    gate = asyncio.Event()

    async def waits_twice() -> str:
        steps.append("first step")
        await gate.wait()
        steps.append("after the gate")
        await asyncio.sleep(0)
        return "done"

    started = start_eagerly(waits_twice(), "handler-y")
    assert isinstance(started, asyncio.Task)
    assert started.get_name() == "handler-y"
    assert steps == ["first step"]
    await asyncio.sleep(0)
    assert steps == ["first step"] and not started.done()  # still waiting on the gate
    gate.set()
    assert await started == "done"
    assert steps == ["first step", "after the gate"]


@pytest.mark.parametrize("turns_before_cancel", [0, 2])
async def test_a_cancel_reaches_the_coroutine_where_it_waits(turns_before_cancel: int) -> None:
    seen: list[str] = []

    async def waits_for_ever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled where it waited")
            raise

    started = start_eagerly(waits_for_ever(), "handler-z")
    assert isinstance(started, asyncio.Task)
    for _ in range(turns_before_cancel):  # 0: cancelled before the task ever ran a step
        await asyncio.sleep(0)
    started.cancel()
    with pytest.raises(asyncio.CancelledError):
        await started
    assert seen == ["cancelled where it waited"]


async def test_what_the_first_step_raises_reaches_the_caller() -> None:
    async def fails_at_once() -> None:
        raise LookupError("no such thing")

    with pytest.raises(LookupError, match="no such thing"):
        start_eagerly(fails_at_once(), "handler-e")


async def test_context_variables_stay_with_the_coroutine_as_in_a_task() -> None:
    async def sets_then_waits() -> str:
        where.set("handler")
        await asyncio.sleep(0)
        return where.get()

    started = start_eagerly(sets_then_waits(), "handler-c")
    assert where.get() == "caller"  # the first step's change did not leak out
    assert isinstance(started, asyncio.Task)
    assert await started == "handler"
