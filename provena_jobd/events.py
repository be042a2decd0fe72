"""The change feed: who is told when jobs change (long-polling fetches, event streams).

The store reports the ids of jobs each committed write changed. Only when someone listens
does the feed read those jobs back and hand them out, so the hot paths pay nothing for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable

import msgspec

from .clock import Clock
from .models import TERMINAL_STATUSES, Job
from .queue.store import JobStore

log = logging.getLogger(__name__)

SUBSCRIBER_BUFFER = 1000


class Subscription:
    """One listener's queue of changed jobs; `username` None means every user's jobs.

    The queue holds at most `buffer` changes. A listener that falls further behind (it does
    not read its stream) is cut off: its stream ends, and its client reconnects and reads the
    current state, instead of jobd holding ever more changes for it.
    """

    def __init__(self, username: str | None, buffer: int = SUBSCRIBER_BUFFER) -> None:
        self.username = username
        # Server-sent event frames; None marks the end of the stream (jobd is shutting down,
        # or the listener is behind).
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.buffer = buffer
        self.behind = False
        self._ended = False

    def offer(self, job: Job, frame: bytes) -> None:
        """Queue a change (`frame`, the job as an event), or cut the listener off if it is
        `buffer` changes behind."""
        if self._ended or (self.username is not None and job.username != self.username):
            return
        if self.queue.qsize() >= self.buffer:
            self.behind = True
            self.close()
            return
        self.queue.put_nowait(frame)

    def close(self) -> None:
        """End the stream."""
        if not self._ended:
            self._ended = True
            self.queue.put_nowait(None)


class ChangeFeed:
    """Fans out job changes to waiters and subscribers."""

    def __init__(self, store: JobStore, clock: Clock, buffer: int = SUBSCRIBER_BUFFER) -> None:
        self.store = store
        self.clock = clock
        self.buffer = buffer
        self._waiters: dict[str, list[asyncio.Event]] = {}
        self._subscriptions: set[Subscription] = set()
        self._pending: set[str] = set()
        self._flushing: asyncio.Task[None] | None = None
        self._closed = False

    async def close(self) -> None:
        """Shutting down: wake every waiter, end every stream, stop reading the store."""
        self._closed = True
        for events in self._waiters.values():
            for event in events:
                event.set()
        for subscription in self._subscriptions:
            subscription.close()
        if self._flushing is not None:
            self._flushing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flushing

    def changed(self, session_ids: Iterable[str]) -> None:
        """Called by the store after a commit; cheap when nobody listens."""
        if self._closed or (not self._waiters and not self._subscriptions):
            return
        self._pending.update(session_ids)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, set()
            for session_id in batch:
                try:
                    job = await self.store.get(session_id)
                except Exception:
                    log.exception("change feed read failed", extra={"action": "feed_failed"})
                    continue
                if job is None:
                    continue
                if self._subscriptions:
                    # Encoded once for every listener: fan-out costs a queue put each.
                    frame = b"event: job\ndata: " + msgspec.json.encode(job) + b"\n\n"
                    for subscription in list(self._subscriptions):
                        subscription.offer(job, frame)
                if job.status in TERMINAL_STATUSES:
                    for event in self._waiters.pop(session_id, []):
                        event.set()

    async def wait_finished(self, session_id: str, timeout_s: float) -> None:
        """Return when the job reaches a terminal status or `timeout_s` passes."""
        if self._closed:
            return
        event = asyncio.Event()
        self._waiters.setdefault(session_id, []).append(event)
        try:
            # Registered first, then checked: a change between the two is not missed.
            job = await self.store.get(session_id)
            if job is None or job.status in TERMINAL_STATUSES:
                return
            await self.clock.wait_event(event, timeout_s)
        finally:
            waiters = self._waiters.get(session_id)
            if waiters is not None:
                with contextlib.suppress(ValueError):
                    waiters.remove(event)
                if not waiters:
                    del self._waiters[session_id]

    @property
    def waiters(self) -> int:
        """Long-polling fetches waiting for a job to finish."""
        return sum(len(events) for events in self._waiters.values())

    @property
    def subscribers(self) -> int:
        """Open subscriptions (event streams)."""
        return len(self._subscriptions)

    @contextlib.asynccontextmanager
    async def subscribe(self, username: str | None) -> AsyncIterator[Subscription]:
        """Receive every change to `username`'s jobs (everyone's for None) while inside."""
        subscription = Subscription(username, self.buffer)
        if self._closed:
            subscription.close()
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)
