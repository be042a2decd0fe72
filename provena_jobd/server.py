"""The composition root: builds the store, service, pools, rescuer and change feed.

"Server" names four things in jobd; the words kept apart:

- `JobdServer`, here: the *engine*, everything but HTTP (one per process or per test). Its
  name stays, since it is public (README, `jobd_server` users); inside `http/` the app key
  that holds it is `ENGINE`.
- the *HTTP listener*: aiohttp serving the engine's routes (`http/serve.py`, `running()`).
- the *test server*: the `jobd_server` pytest fixture (`testing.py`), engine and listener
  started for one test.
- `[server]` in jobd.toml (`Settings.server`): the listener's settings (host, port, limits).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import os
import socket
import sqlite3
from collections.abc import Mapping

from .clock import Clock, SystemClock
from .config import Settings
from .errors import StorageError
from .events import ChangeFeed
from .flow_control import FlowControl
from .identity import Authenticator, DenyAll, ProcessWorkerAuth, make_authenticator, new_token
from .metrics import Metrics, ScrapeState
from .pool_models import PoolSnapshot
from .queue.backends import is_shared, listen_for_waiting, open_store, worker_slots
from .queue.metered import MeteredStore
from .queue.store import JobStore
from .redaction import secret_values, shown_url
from .service import JobService
from .workers.builtin import builtin_handlers
from .workers.cancellations import Cancellations
from .workers.external_pool import ExternalPool
from .workers.gateway import WorkerGateway
from .workers.handlers import Handler, HandlerRegistry
from .workers.isolation import Isolation
from .workers.plugins import configured_handlers
from .workers.pool import Pool
from .workers.process_pool import ProcessPool
from .workers.rescuer import Rescuer
from .workers.retention import Pruner
from .workers.runner import JobRunner
from .workers.scheduler import Scheduler
from .workers.shutdown import ShutdownTally

log = logging.getLogger(__name__)

# How often the store is checkpointed (its WAL copied back and truncated).
MAINTAIN_INTERVAL_S = 60.0

# Engines made in this process so far: the second and later get a suffix in their node name.
_ENGINES = itertools.count(1)

UNKNOWN_JOB_TYPE = (
    "Job type {job_type} is not configured in this jobd any more, so nothing can run this job."
)


def _reason(error: Exception) -> str:
    """A storage error's own words, without the writer's "write failed: " prefix."""
    return str(error).removeprefix("write failed: ")


def node_name() -> str:
    """A new engine's name among the nodes on one database: `host-pid`, then `host-pid-2`,
    `host-pid-3`... for later engines in the same process.

    Worker slots are renewed and given back under the node's name: two engines sharing one
    (a service's tests starting two nodes in one process) would each take the other's slot
    for its own, never see a slot taken over and free the slot another node holds.
    """
    base = f"{socket.gethostname()}-{os.getpid()}"
    number = next(_ENGINES)
    return base if number == 1 else f"{base}-{number}"


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
    """The engine: everything but HTTP, one per process (or per test)."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        handlers: Mapping[str, Handler] | None = None,
        store: JobStore | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.store: JobStore = store or open_store(settings.storage)
        # Several nodes on one database: no node may treat what is held as its own.
        self.shared = is_shared(settings.storage)
        self.node = node_name()
        self.slots = worker_slots(self.store, self.node)
        listen_for_waiting(self.store, self.notify)
        self.feed = ChangeFeed(self.store, self.clock, settings.server.event_buffer)
        self.store.on_change = self.feed.changed
        self.metrics = Metrics()
        # What changes jobs goes through `metered`, which counts for the metrics;
        # `self.store` stays the backend itself (its writer's counters, lifecycle).
        metered = self._metered = MeteredStore(self.store, self.metrics)
        self.gateway = WorkerGateway(metered, settings, self.clock)
        self.cancellations = Cancellations(self.gateway)
        self.service = JobService(
            metered, settings, self.clock, self.notify, self.cancellations.interrupt
        )
        # Built-in handlers, then what the config routes elsewhere, then the caller's own.
        self.handlers = HandlerRegistry(
            {
                **builtin_handlers(settings, self.store),
                **configured_handlers(settings),
                **(handlers or {}),
            }
        )
        self.runner = JobRunner(
            metered,
            self.handlers,
            self.clock,
            settings.queue,
            launcher=self.service,
            cancellations=self.cancellations,
        )
        self.pools: dict[str, Pool | ExternalPool] = {
            job_type: self._pool(job_type) for job_type in self.service.catalog.job_types
        }
        self.rescuer = Rescuer(metered, settings.queue, self.clock, self.notify)
        self.pruner = Pruner(metered, self.clock, settings.retention)
        self.isolation = Isolation(
            metered,
            self.runner,
            self.clock,
            settings,
            {t: pool for t, pool in self.pools.items() if isinstance(pool, Pool)},
        )
        self.scheduler = Scheduler(metered, self.service, settings.schedules, self.clock)
        self.flow = FlowControl(metered, self.service.catalog, self.clock, self._type_paused)
        # Deny by default: `start()` puts the configured authenticator in place.
        self.authenticator: Authenticator = DenyAll()
        self._rescuer_task: asyncio.Task[None] | None = None
        self._pruner_task: asyncio.Task[None] | None = None
        self._maintenance_task: asyncio.Task[None] | None = None
        self._scheduler_task: asyncio.Task[None] | None = None
        self._stopped = False
        # Readiness: true once the store is open and migrated and the pools run; false again
        # from the moment shutdown begins.
        self.ready = False
        self.metrics_url: str | None = None  # `[metrics] listen`, once it is bound

    def _pool(self, job_type: str) -> Pool | ExternalPool:
        """In-process workers, or workers outside jobd (processes it starts, or your own)."""
        settings = self.settings.pool_for(job_type)
        queue = self.settings.queue
        if settings.command:
            # The configuration's secrets are redacted in what its processes write.
            secrets = secret_values(self.settings)
            return ProcessPool(
                job_type, settings, queue, self._metered, self.gateway, self.clock, secrets
            )
        if settings.external:
            return ExternalPool(job_type, settings, queue, self._metered, self.gateway, self.clock)
        return Pool(job_type, settings, queue, self._metered, self.runner, self.clock, self.slots)

    def notify(self, job_type: str) -> None:
        """Tell a job type's pool, and workers waiting to claim, that jobs may be waiting."""
        pool = self.pools.get(job_type)
        if pool is None:
            return  # another node's job type, which this node does not run
        pool.notify()
        self.gateway.notify(job_type)

    def _type_paused(self, job_type: str, paused: bool) -> None:
        """A job type was paused or resumed here: its pool and waiting workers act now."""
        pool = self.pools[job_type]
        if isinstance(pool, Pool):
            pool.set_type_paused(paused)
        self.notify(job_type)

    def set_public_url(self, url: str) -> None:
        """The URL jobd answers on, for links it hands out and for the processes it starts."""
        self.runner.public_url = (self.settings.reports.public_url or url).rstrip("/")
        for pool in self.pools.values():
            if isinstance(pool, ProcessPool):
                pool.jobd_url = url
                pool.notify()

    async def start(self) -> None:
        """Load auth keys, open the store, requeue what a dead process left, start the pools."""
        self.authenticator = await self._authenticator()
        await self.scheduler.check()
        await self.store.open()
        try:
            if not self.shared:
                # Single node: no worker of an earlier process can still be alive. What it
                # held becomes a suspect of its death, run alone before anything else. With
                # several nodes, live ones may hold jobs: only expired leases are rescued.
                await self.rescuer.recover(
                    [t for t, pool in self.pools.items() if isinstance(pool, Pool)]
                )
            known = list(self.service.catalog.job_types)
            if not self.shared:
                # A job type removed from the config has no pool: its jobs would wait forever.
                await self.store.fail_unknown_types(known, UNKNOWN_JOB_TYPE, self.clock.now())
            else:
                # Another node may run them (or a node started with the wrong config): theirs.
                await self._warn_of_unknown_types(known)
        except BaseException as exc:
            # Close the store, or its threads would keep a failed start alive (issue 18).
            await self.store.close()
            if isinstance(exc, StorageError | sqlite3.Error):
                raise StorageError(
                    f"cannot use database {shown_url(self.settings.storage.db)}: {_reason(exc)}"
                ) from None
            raise
        self.runner.watchdog.start()
        await self.isolation.start()
        for pool in self.pools.values():
            pool.start()
            pool.notify()
        self._rescuer_task = asyncio.create_task(self.rescuer.run_forever(), name="rescuer")
        if self.settings.retention.enabled:
            self._pruner_task = asyncio.create_task(self.pruner.run_forever(), name="retention")
        self._maintenance_task = asyncio.create_task(self._maintain_forever(), name="maintain")
        if self.settings.schedules:
            self._scheduler_task = asyncio.create_task(
                self.scheduler.run_forever(), name="scheduler"
            )
        self.ready = True

    async def _authenticator(self) -> Authenticator:
        """The configured mode's authenticator; with auth on and worker processes to start,
        one that also accepts the token made here for them (handed over as JOBD_TOKEN)."""
        authenticator = await make_authenticator(self.settings.auth, self.clock)
        processes = [p for p in self.pools.values() if isinstance(p, ProcessPool)]
        if self.settings.auth.mode == "none" or not processes:
            return authenticator
        token = new_token()
        for pool in processes:
            pool.token = token
        return ProcessWorkerAuth(authenticator, token, self.settings.auth)

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

    async def stop_outside_workers(self, grace_s: float | None = None) -> None:
        """Hand out no more jobs over the worker protocol; stop the worker processes.

        Called while HTTP still serves, so the processes can finish their jobs in the grace
        period.
        """
        self.ready = False
        grace = self.settings.server.shutdown_grace_s if grace_s is None else grace_s
        self.gateway.close()
        processes = [p for p in self.pools.values() if isinstance(p, ProcessPool)]
        await asyncio.gather(*(pool.drain(grace) for pool in processes))

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop claiming, let running jobs finish within the grace period, requeue the rest."""
        if self._stopped:
            return
        self._stopped = True
        self.ready = False
        grace = self.settings.server.shutdown_grace_s if grace_s is None else grace_s
        tasks = (
            self._rescuer_task,
            self._pruner_task,
            self._maintenance_task,
            self._scheduler_task,
        )
        for task in tasks:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.gateway.close()
        await self.isolation.stop()
        await asyncio.gather(*(pool.drain(grace) for pool in self.pools.values()))
        await self.feed.close()
        await self.runner.watchdog.stop()
        await self.store.close()

    async def _warn_of_unknown_types(self, known: list[str]) -> None:
        """One warning naming the job types waiting in a shared database that this node runs
        no pool for: they wait for a node that does."""
        waiting = await self.store.waiting_by_type()
        unknown = {job_type: n for job_type, n in waiting.items() if job_type not in known}
        if unknown:
            listed = ", ".join(f"{job_type} ({n})" for job_type, n in sorted(unknown.items()))
            log.warning(
                "jobs of types this node's config does not have wait for a node that has "
                "them: %s (every node should have the same [jobs] and [pool] types; with "
                "none, they wait until a config has them again, or are cancelled)",
                listed,
                extra={"action": "unknown_job_types", "job_types": sorted(unknown)},
            )

    def running_jobs(self) -> int:
        """How many jobs are running now, across every pool."""
        return sum(pool.running_jobs() for pool in self.pools.values())

    def shutdown_tally(self) -> ShutdownTally:
        """What `stop` did with the pools' jobs (all zero before it)."""
        tallies = [pool.shutdown for pool in self.pools.values()] + [self.isolation.shutdown]
        return ShutdownTally(
            finished=sum(tally.finished for tally in tallies),
            returned=sum(tally.returned for tally in tallies),
        )

    def held_outside(self) -> int:
        """How many running jobs outside workers hold (`external = true` pools): a shutdown
        does not wait for them; they stay the workers' while their leases last."""
        return sum(p.running_jobs() for p in self.pools.values() if type(p) is ExternalPool)

    def hurry(self) -> None:
        """Stop now: end the shutdown grace period; unfinished jobs return to PENDING."""
        for pool in self.pools.values():
            pool.hurry()

    async def pool_snapshots(self) -> list[PoolSnapshot]:
        """Every pool's state (the waiting counts read once for all of them, while no pool
        moves jobs between the queue and its hold, so that each waiting job counts once)."""
        in_process = [pool for pool in self.pools.values() if isinstance(pool, Pool)]
        # Only the counts under the pools' locks: their claims wait for nothing else.
        async with contextlib.AsyncExitStack() as still:
            for pool in in_process:
                await still.enter_async_context(pool.ahead.moving)
            waiting = await self._metered.waiting_by_type()
            held = {pool.job_type: pool.claimed_ahead for pool in in_process}
        return [
            await pool.snapshot(waiting, held[pool.job_type])
            if isinstance(pool, Pool)
            else await pool.snapshot(waiting)
            for pool in self.pools.values()
        ]

    async def metrics_text(self) -> bytes:
        """Every metric in the Prometheus text format, the gauges read now."""
        writer = getattr(self.store, "writer", None)  # the backend's group commit, if any
        state = ScrapeState(
            pools=await self.pool_snapshots(),
            idle_stops={t: p.idle_stops for t, p in self.pools.items() if isinstance(p, Pool)},
            transactions=writer.batches if writer else None,
            writes=writer.writes if writer else None,
        )
        return self.metrics.exposition(state)
