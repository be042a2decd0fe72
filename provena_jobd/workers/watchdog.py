"""The loop watchdog: say so in the log when something blocks the event loop, and who.

jobd runs every handler on one event loop; a handler that blocks it (`time.sleep`, a
synchronous HTTP call, heavy CPU work) stalls every request and every other job until it
returns. asyncio's own slow-callback warning needs debug mode, which slows everything down.
Instead a loop task stamps the time every `interval_s`, and a small thread looks: when the
stamp is older than `threshold_s`, the loop is blocked, and the task running on it (a
handler's task is named after its job) is named in a warning. Blocking code belongs in a
thread: `await asyncio.to_thread(blocking_function, ...)` (see "Handlers" in the README).

This measures real time on purpose (the injected Clock is the jobs' time, not the CPU's).
"""

from __future__ import annotations

import asyncio
import logging
import threading

from ..clock import monotonic

log = logging.getLogger(__name__)

HANDLER_TASK_PREFIX = "handler-"


class LoopWatchdog:
    """Warns, once per stall, when the event loop does not turn for `threshold_s`."""

    def __init__(self, threshold_s: float = 1.0, interval_s: float = 0.1) -> None:
        self.threshold_s = threshold_s
        self.interval_s = interval_s
        self.stalls = 0
        self._beat = monotonic()
        self._stop = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._handlers: dict[str, str] = {}

    def running(self, session_id: str, sub_type: str) -> None:
        """A handler started (so a stall can name its job sub type)."""
        self._handlers[session_id] = sub_type

    def done(self, session_id: str) -> None:
        """A handler ended."""
        self._handlers.pop(session_id, None)

    def start(self) -> None:
        """Start the heartbeat task and the watching thread."""
        loop = asyncio.get_running_loop()
        self._beat = monotonic()
        self._task = loop.create_task(self._heartbeat(), name="loop-watchdog")
        self._thread = threading.Thread(
            target=self._watch, args=(loop,), name="jobd-watchdog", daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        """Stop watching."""
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    async def _heartbeat(self) -> None:
        while True:
            self._beat = monotonic()
            await asyncio.sleep(self.interval_s)

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        reported = 0.0
        while not self._stop.wait(self.interval_s):
            beat = self._beat
            stalled = monotonic() - beat
            if stalled < self.threshold_s or beat == reported:
                continue
            reported = beat
            self.stalls += 1
            log.warning(
                "the event loop has been blocked for %.1f s by %s; blocking code stalls every "
                "request and job: run it in a thread (await asyncio.to_thread(...))",
                stalled,
                self._culprit(loop),
                extra={"action": "loop_blocked"},
            )

    def _culprit(self, loop: asyncio.AbstractEventLoop) -> str:
        """What runs on the loop now (read from this thread: a best-effort diagnosis)."""
        task = asyncio.current_task(loop)
        if task is None:
            return "a callback outside any task"
        name = task.get_name()
        if name.startswith(HANDLER_TASK_PREFIX):
            session_id = name.removeprefix(HANDLER_TASK_PREFIX)
            sub_type = self._handlers.get(session_id, "?")
            return f"the handler of job {session_id} (job sub type {sub_type})"
        return f"task {name}"
