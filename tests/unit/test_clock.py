"""The fake clock moves only when told to, and wakes sleepers in deadline order."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from provena_jobd.clock import FakeClock, SystemClock
from tests.helpers import settle


async def test_sleepers_wake_in_deadline_order_as_time_advances() -> None:
    clock = FakeClock(start=1_000.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    tasks = [asyncio.create_task(sleeper("late", 30)), asyncio.create_task(sleeper("soon", 10))]
    await settle()
    await clock.advance(9)
    assert woke == []
    await clock.advance(25)
    assert woke == [("soon", 1_010.0), ("late", 1_030.0)]
    assert clock.now() == 1_034.0
    await asyncio.gather(*tasks)


async def test_wait_for_times_out_on_fake_time_only() -> None:
    clock = FakeClock()
    never = asyncio.Event()
    waiter = asyncio.create_task(clock.wait_for(never.wait(), 5))
    await settle()
    assert not waiter.done()
    await clock.advance(5)
    with pytest.raises(TimeoutError):
        await waiter


async def test_a_fake_wait_for_s_deadline_is_taken_when_it_is_asked_for() -> None:
    clock = FakeClock()
    waiting = asyncio.ensure_future(clock.wait_for(asyncio.Event().wait(), 1))
    await asyncio.sleep(0)  # it waits now, asked for 1 s from time 0
    await clock.advance(5)  # moved on before its timer's task would have run
    assert waiting.done()
    with pytest.raises(TimeoutError):
        waiting.result()


async def test_a_cancelled_wait_for_cancels_what_it_waited_for() -> None:
    # As asyncio.wait_for does: nothing is left pending (and destroyed pending at the end).
    clock = FakeClock()
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def waited() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    waiter = asyncio.create_task(clock.wait_for(waited(), 5))
    await started.wait()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await settle()
    assert cancelled.is_set()
    assert clock.sleepers == 0


async def test_wait_event_returns_true_when_set_before_timeout() -> None:
    clock = FakeClock()
    event = asyncio.Event()
    waiter = asyncio.create_task(clock.wait_event(event, 60))
    await settle()
    event.set()
    assert await waiter is True
    assert await clock.wait_event(asyncio.Event(), 0) is False


async def test_system_clock_times_out_a_future_and_leaves_a_shielded_task_running() -> None:
    # The runner's shape: it awaits its handler's task through a shield.
    release = asyncio.Event()
    handler = asyncio.create_task(release.wait())
    with pytest.raises(TimeoutError):
        await SystemClock().wait_for(asyncio.shield(handler), 0.01)
    assert not handler.done()  # stopping the handler is the runner's decision
    release.set()
    assert await SystemClock().wait_for(asyncio.shield(handler), 1.0) is True


async def test_system_clock_cancels_of_the_future_or_the_waiter_stay_cancels() -> None:
    clock = SystemClock()
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    waiter = asyncio.create_task(clock.wait_for(future, 5.0))
    await settle()
    future.cancel()  # what a job's cancel does to the future its runner awaits
    with pytest.raises(asyncio.CancelledError):
        await waiter
    waiter = asyncio.create_task(clock.wait_for(asyncio.Event().wait(), 5.0))
    other = asyncio.create_task(clock.wait_for(asyncio.get_running_loop().create_future(), 5.0))
    await settle()
    waiter.cancel()
    other.cancel()  # a shutdown cancels the waiting task: not a timeout
    for task in (waiter, other):
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_system_clock_returns_what_finished_in_time() -> None:
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(future.set_result, "done")
    assert await SystemClock().wait_for(future, 1.0) == "done"
    with pytest.raises(TimeoutError):
        await SystemClock().wait_for(asyncio.sleep(1.0), 0.01)  # a coroutine: asyncio.timeout


async def test_a_fake_timer_cancelled_once_due_but_not_yet_called_never_calls() -> None:
    clock = FakeClock()
    called: list[str] = []
    timer = clock.call_later(5, lambda: called.append("late"))
    moving = asyncio.create_task(clock.advance(5))
    # Between the timer coming due and its callback running: as an event loop's handle, a
    # cancel then still stops it.
    asyncio.get_running_loop().call_soon(timer.cancel)
    await moving
    assert called == []


async def test_the_real_clock_times_out_inside_a_task_being_cancelled() -> None:
    # A shutdown's cleanup waits with the clock in a task that is being cancelled; the wait
    # must still end in TimeoutError (asyncio.timeout on Python 3.11.0-3.11.2 does not).
    outcome: list[str] = []

    async def cleanup() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            try:
                await SystemClock().wait_for(asyncio.Event().wait(), 0.01)
            except TimeoutError:
                outcome.append("timed out")
            raise

    task = asyncio.create_task(cleanup())
    await asyncio.sleep(0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert outcome == ["timed out"]
