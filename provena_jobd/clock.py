"""Time, injected: the only module that reads the wall clock or sleeps.

Everything time-driven in jobd (cold start, idle shutdown, leases, back-off, handler
timeouts) asks a `Clock`. Production uses `SystemClock`; tests and users' own test
suites use `FakeClock`, which only moves when told to.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


def monotonic() -> float:
    """Seconds on the real monotonic clock, for measuring how long real work took.

    For durations that are reported or used to pace real work (a backup's time, the event
    loop watchdog, retention's pauses, the client's overall wait); never for a decision a
    test drives with a `FakeClock`.
    """
    return time.monotonic()


def rounded_to_ms(at: float) -> float:
    """Epoch seconds to the millisecond, as every time the API shows is kept."""
    return round(at, 3)


def truncated_to_ms(at: float) -> float:
    """Epoch seconds down to the millisecond, for a time a job may run from (`run_after`):
    never later than asked, so a job handed back "now" can be claimed at once."""
    return math.floor(at * 1000) / 1000


class Clock(Protocol):
    """Where jobd gets the time and how it waits."""

    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time."""
        ...

    async def wait_for(self, awaitable: Awaitable[T], timeout_s: float) -> T:
        """Await `awaitable`, raising TimeoutError after `timeout_s` seconds of this clock."""
        ...

    async def wait_event(self, event: asyncio.Event, timeout_s: float) -> bool:
        """Wait until `event` is set or `timeout_s` passes; True if the event was set."""
        ...

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        """Call `callback` on the event loop once `seconds` of this clock's time have passed."""
        ...


class Timer(Protocol):
    """A callback `Clock.call_later` will call, unless it is cancelled first."""

    def cancel(self) -> Any:
        """Do not call it (a no-op once it has been called)."""
        ...


async def _future_within(future: asyncio.Future[T], timeout_s: float) -> T:
    """`future`'s result, or TimeoutError once `timeout_s` has passed: the timer cancels the
    future, as asyncio.timeout's cancel of the awaiting task would. A cancel of the awaiting
    task, or of the future by someone else, stays a CancelledError."""
    task = asyncio.current_task()
    cancelling = task.cancelling() if task is not None else 0
    expired = False

    def expire() -> None:
        nonlocal expired
        if not future.done():
            expired = True
            future.cancel()

    timer = asyncio.get_running_loop().call_later(timeout_s, expire)
    try:
        return await future
    except asyncio.CancelledError:
        # The task itself being cancelled as well (a shutdown) wins, as with asyncio.timeout.
        if expired and (task is None or task.cancelling() <= cancelling):
            raise TimeoutError from None
        raise
    finally:
        timer.cancel()


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        """Seconds since the Unix epoch."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await asyncio.sleep(max(0.0, seconds))

    async def wait_for(self, awaitable: Awaitable[T], timeout_s: float) -> T:
        """Await with a non-negative timeout, on a plain timer (a coroutine in a task).

        Not asyncio.timeout: a shutdown's cleanup waits with this inside a task that is being
        cancelled, where asyncio.timeout on Python 3.11.0-3.11.2 (Debian 12's) raises the
        CancelledError instead of TimeoutError once the time is up.
        """
        future = asyncio.ensure_future(awaitable)  # a future as it is; a coroutine in a task
        return await _future_within(future, max(0.0, timeout_s))

    async def wait_event(self, event: asyncio.Event, timeout_s: float) -> bool:
        """Wait for the event with a timeout."""
        if event.is_set():
            return True
        try:
            await asyncio.wait_for(event.wait(), max(0.0, timeout_s))
        except TimeoutError:
            return False
        return True

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        """The event loop's own timer."""
        return asyncio.get_running_loop().call_later(max(0.0, seconds), callback)


class _FakeTimer:
    """A `FakeClock.call_later` timer: cancelled, it never calls, even once it is due (as
    an event loop's timer handle)."""

    def __init__(self, due: asyncio.Future[None], callback: Callable[[], None]) -> None:
        self._due = due
        self._callback = callback
        self._cancelled = False
        due.add_done_callback(self._fire)

    def cancel(self) -> None:
        """Do not call it."""
        self._cancelled = True
        self._due.cancel()

    def _fire(self, due: asyncio.Future[None]) -> None:
        if not self._cancelled and not due.cancelled():
            self._callback()


class FakeClock:
    """A clock that stands still until `advance` moves it; sleepers wake in deadline order."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        """The current fake time."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Wait until the fake time has moved `seconds` forward."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        await self._due_in(seconds)

    def _due_in(self, seconds: float) -> asyncio.Future[None]:
        """A future that `advance` resolves once `seconds` (> 0) from now have passed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        return future

    async def wait_for(self, awaitable: Awaitable[T], timeout_s: float) -> T:
        """Race `awaitable` against a fake-time timer."""
        task = asyncio.ensure_future(awaitable)
        # The deadline is taken now, not when a task would first run: an `advance` in
        # between must not push it later.
        timer = self._due_in(timeout_s) if timeout_s > 0 else asyncio.ensure_future(self.sleep(0))
        racing: set[asyncio.Future[Any]] = {task, timer}
        try:
            await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()  # the caller was cancelled: what it waited for goes too, not left behind
            raise
        finally:
            timer.cancel()
        if task.done():
            return task.result()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        raise TimeoutError

    async def wait_event(self, event: asyncio.Event, timeout_s: float) -> bool:
        """Wait until the event is set or the fake time passes `timeout_s`."""
        if event.is_set():
            return True
        try:
            await self.wait_for(event.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        """Call `callback` when `advance` passes `seconds` from now (at once if not positive)."""
        loop = asyncio.get_running_loop()
        if seconds <= 0:
            return loop.call_soon(callback)
        due: asyncio.Future[None] = loop.create_future()
        timer = _FakeTimer(due, callback)
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), due))
        return timer

    @property
    def sleepers(self) -> int:
        """How many sleeps and timers are waiting on this clock (useful to know the system
        has settled)."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking every sleeper whose deadline passes, in order."""
        target = self._now + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            if not future.done():
                future.set_result(None)
                # Let the woken task run before later deadlines fire.
                for _ in range(5):
                    await asyncio.sleep(0)
        self._now = target
        for _ in range(5):
            await asyncio.sleep(0)
