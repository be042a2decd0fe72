"""The fake clock moves only when told to, and wakes sleepers in deadline order."""

from __future__ import annotations

import asyncio

import pytest

from provena_jobd.clock import FakeClock
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


async def test_wait_event_returns_true_when_set_before_timeout() -> None:
    clock = FakeClock()
    event = asyncio.Event()
    waiter = asyncio.create_task(clock.wait_event(event, 60))
    await settle()
    event.set()
    assert await waiter is True
    assert await clock.wait_event(asyncio.Event(), 0) is False
