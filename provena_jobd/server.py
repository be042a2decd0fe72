"""The composition root: builds the store, service, pools, rescuer and change feed."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sqlite3
from collections.abc import Mapping

from .clock import Clock, SystemClock
from .config import Settings
from .errors import StorageError
from .events import ChangeFeed
from .identity import Authenticator, NoAuth, make_authenticator
from .models import Job
from .queue.sqlite import SqliteStore
from .queue.store import JobStore
from .service import JobService
from .workers.builtin import builtin_handlers
from .workers.handlers import Handler, HandlerRegistry
from .workers.isolation import Isolation
from .workers.plugins import configured_handlers
from .workers.pool import Pool, PoolSnapshot
from .workers.rescuer import Rescuer
from .workers.runner import JobRunner

log = logging.getLogger(__name__)

# How often the store is checkpointed (its WAL copied back and truncated).
MAINTAIN_INTERVAL_S = 60.0

UNKNOWN_JOB_TYPE = (
    "Job type {job_type} is not configured in this jobd any more, so nothing can run this job."
)


def _reason(error: Exception) -> str:
    """A storage error's own words, without the writer's "write failed: " prefix."""
    return str(error).removeprefix("write failed: ")


def tune_gc() -> None:
    """Garbage-collector settings for a long-running jobd process.

    Under load, every job's tasks and futures survive a few collections, and full collections
    that walk them all took about a sixth of the CPU in the benchmark. Freezing what start-up
    created and collecting the youngest generation less often keeps that down; jobd makes few
    reference cycles, so memory stays flat.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


class JobdServer:
    """Everything but HTTP: one per process (or per test)."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        handlers: Mapping[str, Handler] | None = None,
        store: JobStore | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.store: JobStore = store or SqliteStore(
            settings.storage.db, settings.storage.durability
        )
        self.feed = ChangeFeed(self.store, self.clock, settings.server.event_buffer)
        self.store.on_change = self.feed.changed
        self.service = JobService(self.store, settings, self.clock, self.notify)
        # Built-in handlers, then what the config routes elsewhere, then the caller's own.
        self.handlers = HandlerRegistry(
            {
                **builtin_handlers(settings, self.store),
                **configured_handlers(settings),
                **(handlers or {}),
            }
        )
        self.runner = JobRunner(
            self.store, self.handlers, self.clock, settings.queue, launcher=self.service
        )
        self.pools = {
            job_type: Pool(
                job_type,
                settings.pool_for(job_type),
                settings.queue,
                self.store,
                self.runner,
                self.clock,
            )
            for job_type in self.service.catalog.job_types
        }
        self.rescuer = Rescuer(
            self.store, self.runner, self.clock, settings.queue.rescue_interval_s, self.notify
        )
        self.isolation = Isolation(self.store, self.runner, self.clock, settings, self.pools)
        self.authenticator: Authenticator = NoAuth(settings.auth)
        self._rescuer_task: asyncio.Task[None] | None = None
        self._maintenance_task: asyncio.Task[None] | None = None
        self._stopped = False

    def notify(self, job_type: str) -> None:
        """Tell a job type's pool that jobs may be waiting."""
        self.pools[job_type].notify()

    def set_public_url(self, url: str) -> None:
        """The URL jobd answers on, for links it hands out (report downloads)."""
        self.runner.public_url = (self.settings.reports.public_url or url).rstrip("/")

    async def start(self) -> None:
        """Load auth keys, open the store, requeue what a dead process left, start the pools."""
        self.authenticator = await make_authenticator(self.settings.auth, self.clock)
        await self.store.open()
        try:
            # Single node: no worker of an earlier process can still be alive. What it held
            # becomes a suspect of its death, run alone before anything else.
            await self.rescuer.recover()
            # A job type removed from the config has no pool: its jobs would wait forever.
            await self.store.fail_unknown_types(
                list(self.service.catalog.job_types), UNKNOWN_JOB_TYPE, self.clock.now()
            )
        except BaseException as exc:
            # Close the store, or its threads would keep a failed start alive (issue 18).
            await self.store.close()
            if isinstance(exc, StorageError | sqlite3.Error):
                raise StorageError(
                    f"cannot use database {self.settings.storage.db}: {_reason(exc)}"
                ) from None
            raise
        self.runner.watchdog.start()
        await self.isolation.start()
        for pool in self.pools.values():
            pool.start()
            pool.notify()
        self._rescuer_task = asyncio.create_task(self.rescuer.run_forever(), name="rescuer")
        self._maintenance_task = asyncio.create_task(self._maintain_forever(), name="maintain")

    async def _maintain_forever(self) -> None:
        """Store housekeeping (the WAL checkpoint) every MAINTAIN_INTERVAL_S."""
        while True:
            await self.clock.sleep(MAINTAIN_INTERVAL_S)
            try:
                await self.store.maintain()
            except Exception:
                log.warning(
                    "store maintenance failed", exc_info=True, extra={"action": "maintain_failed"}
                )

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop claiming, let running jobs finish within the grace period, requeue the rest."""
        if self._stopped:
            return
        self._stopped = True
        grace = self.settings.server.shutdown_grace_s if grace_s is None else grace_s
        for task in (self._rescuer_task, self._maintenance_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.isolation.stop()
        await asyncio.gather(*(pool.drain(grace) for pool in self.pools.values()))
        await self.feed.close()
        await self.runner.watchdog.stop()
        await self.store.close()

    async def cancel(self, session_id: str, caller: str | None, by: str) -> Job:
        """Cancel a job: at once if it waits, cooperatively if its handler is running."""
        job, running = await self.service.cancel(session_id, caller, by)
        if running:
            self.pools[job.job_type].cancel(session_id, f"Cancelled by {by}.")
        return job

    async def pool_snapshots(self) -> list[PoolSnapshot]:
        """Every pool's state."""
        return [await pool.snapshot() for pool in self.pools.values()]
