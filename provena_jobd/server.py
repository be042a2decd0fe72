"""The composition root: builds the store, pools, rescuer and service, and runs them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

from .clock import Clock, SystemClock
from .config import Settings
from .identity import Authenticator, NoAuth, make_authenticator
from .models import JobSubType, JobType
from .queue.sqlite import SqliteStore
from .queue.store import JobStore
from .service import JobService
from .workers.handlers import Handler, HandlerRegistry
from .workers.pool import Pool, PoolSnapshot
from .workers.rescuer import Rescuer
from .workers.runner import JobRunner


class JobdServer:
    """Everything but HTTP: one per process (or per test)."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        handlers: Mapping[JobSubType, Handler] | None = None,
        store: JobStore | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.store: JobStore = store or SqliteStore(
            settings.storage.db, settings.storage.durability
        )
        self.handlers = HandlerRegistry(handlers)
        self.runner = JobRunner(self.store, self.handlers, self.clock, settings.queue)
        self.pools = {
            job_type: Pool(
                job_type,
                settings.pool_for(job_type),
                settings.queue,
                self.store,
                self.runner,
                self.clock,
            )
            for job_type in JobType
        }
        self.rescuer = Rescuer(
            self.store, self.runner, self.clock, settings.queue.rescue_interval_s, self.notify
        )
        self.service = JobService(self.store, settings, self.clock, self.notify)
        self.authenticator: Authenticator = NoAuth(settings.auth)
        self._rescuer_task: asyncio.Task[None] | None = None
        self._stopped = False

    def notify(self, job_type: JobType) -> None:
        """Tell a job type's pool that jobs may be waiting."""
        self.pools[job_type].notify()

    async def start(self) -> None:
        """Load auth keys, open the store, requeue what a dead process left, start the pools."""
        self.authenticator = await make_authenticator(self.settings.auth, self.clock)
        await self.store.open()
        # Single node: no worker of an earlier process can still be alive.
        await self.rescuer.run_once(everything=True)
        for pool in self.pools.values():
            pool.start()
            pool.notify()
        self._rescuer_task = asyncio.create_task(self.rescuer.run_forever(), name="rescuer")

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop claiming, let running jobs finish within the grace period, requeue the rest."""
        if self._stopped:
            return
        self._stopped = True
        grace = self.settings.server.shutdown_grace_s if grace_s is None else grace_s
        if self._rescuer_task is not None:
            self._rescuer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rescuer_task
        await asyncio.gather(*(pool.drain(grace) for pool in self.pools.values()))
        await self.store.close()

    async def pool_snapshots(self) -> list[PoolSnapshot]:
        """Every pool's state."""
        return [await pool.snapshot() for pool in self.pools.values()]
