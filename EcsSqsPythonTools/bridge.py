"""A blocking front for jobd's async `WorkerClient`, for the reference's synchronous loop.

The client runs on an event loop in a background thread, so the worker's callback runs on
the main thread with no loop of its own running (Provena's callbacks call `asyncio.run`),
and heartbeats keep the job's lease while the callback works.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from provena_jobd.client import Conflict
from provena_jobd.worker_client import ClaimedWork, WorkerClient

T = TypeVar("T")


class JobdBridge:
    """One worker's connection to jobd, callable from synchronous code."""

    def __init__(self, url: str, token: str | None, worker_id: str | None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="jobd-client", daemon=True
        )
        self._thread.start()
        worker = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.client = WorkerClient(url, token, worker_id=worker)

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run one client call to its end and return its result (or raise its error)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    @contextlib.contextmanager
    def heartbeats(self, work: ClaimedWork) -> Iterator[None]:
        """Keep the job's lease while the block runs (every third of a lease)."""

        async def beat() -> None:
            while True:
                await asyncio.sleep(self.client.lease_s / 3)
                try:
                    await self.client.heartbeat(work)
                except Conflict:
                    return  # the job moved on; the finish will be refused and say so
                except Exception as error:  # jobd briefly unreachable: try again next beat
                    print(f"Heartbeat failed: {error}.")

        future = asyncio.run_coroutine_threadsafe(beat(), self._loop)
        try:
            yield
        finally:
            future.cancel()

    def close(self) -> None:
        """Close the HTTP session and stop the background loop."""
        self.call(self.client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
