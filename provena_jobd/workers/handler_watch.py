"""Watching a running handler from outside its task: its timeout, a cancel, and giving up on
a handler that ignores being stopped.

A handler runs in its job's own task from its first step, with the runner's code around it
(`JobRunner.run`): no second task per job, so a job whose handler returns at once costs no
extra turns of the event loop, and everything the handler does (`asyncio.current_task()`,
`asyncio.timeout`, contextvars) sees the one task that is the job's for its whole life.

What must act while the handler is still running, the timeout and a cancel, therefore lives
here, in timers on the injected clock. Either one cancels the job's task; if the handler has
not returned `CANCEL_GRACE_S` later, the watch calls `give_up`, and the runner abandons it:
it ends the attempt from another task and stops waiting for this one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..clock import Clock, Timer

# How long (clock time) a stopped handler gets to end before the runner abandons it.
CANCEL_GRACE_S = 5.0


class HandlerWatch:
    """One running handler's timeout and cancel, acted on from outside its task."""

    def __init__(
        self,
        clock: Clock,
        task: asyncio.Task[Any],
        timeout_s: float,
        give_up: Callable[[HandlerWatch], None],
    ) -> None:
        self.task = task
        self.live = True  # the handler has not returned yet
        self.timed_out = False
        self.stopped = False  # this watch cancelled the task: a timeout or a cancel
        self.shut_down = False  # a shutdown cancelled the task (see `JobRunner.stop_task`)
        self.abandoned = False  # it ignored the stop; its attempt was ended without it
        self._clock = clock
        self._give_up = give_up
        self._grace: Timer | None = None
        self._timer = clock.call_later(timeout_s, self._expire)

    def cancel(self) -> None:
        """Stop the handler for a cancel of its job (`Cancellations.interrupt` calls this)."""
        self._stop()

    def shut_down_now(self) -> None:
        """A shutdown stops the handler (`JobRunner.stop_task`): no timeout, cancel or
        abandonment of this watch's own applies any more; the shutdown gives the grace."""
        self.shut_down = True
        self._disarm()

    def returned(self) -> None:
        """The handler is over: nothing is left to watch.

        Called in the job's task right after the handler returns, before anything is awaited,
        so that no timer can cancel the task once the runner's own code runs again.
        """
        self.live = False
        self._disarm()

    def _disarm(self) -> None:
        self._timer.cancel()
        if self._grace is not None:
            self._grace.cancel()

    def _expire(self) -> None:
        if self.live and not self.stopped and not self.shut_down:
            self.timed_out = True
            self._stop()

    def _stop(self) -> None:
        # A second stop, or one that comes as the handler returns, stops nothing twice.
        if not self.live or self.stopped or self.shut_down:
            return
        self.stopped = True
        self.task.cancel()
        self._grace = self._clock.call_later(CANCEL_GRACE_S, self._abandon)

    def _abandon(self) -> None:
        if self.live and not self.shut_down:
            self.abandoned = True
            self._give_up(self)
