"""Pools whose workers run outside jobd and that nobody here starts (`[pool.<TYPE>] external =
true`): they only report the workers that claim over the worker protocol (`gateway.py`).

`ProcessPool` (`process_pool.py`) builds on this for the worker processes jobd starts itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Set

import msgspec

from ..clock import Clock
from ..config import REDACTED, PoolSettings, QueueSettings
from ..pool_models import PoolSnapshot, StartBackoffInfo, WorkerInfo
from ..queue.store import JobStore
from ..redaction import redact
from .gateway import WorkerGateway
from .pool_workers import WorkerState
from .shutdown import ShutdownTally


class ExternalPool:
    """A job type run by workers outside jobd that nobody here starts."""

    def __init__(
        self,
        job_type: str,
        settings: PoolSettings,
        queue: QueueSettings,
        store: JobStore,
        gateway: WorkerGateway,
        clock: Clock,
        secrets: Set[str] = frozenset(),
    ) -> None:
        self.job_type = job_type
        self.settings = settings
        self.queue = queue
        self.store = store
        self.gateway = gateway
        self.clock = clock
        self.cold_starts = 0
        self.secrets = secrets  # the configuration's: redacted wherever the pool shows text
        self._hurry = asyncio.Event()  # set by a second Ctrl-C: end the grace period now
        # Once drained (a process pool's; outside workers' jobs stay theirs).
        self.shutdown = ShutdownTally()

    @property
    def jobs_finished(self) -> int:
        """Jobs of this type that outside workers finished."""
        return self.gateway.finished.get(self.job_type, 0)

    def notify(self) -> None:
        """Jobs may be waiting (the gateway wakes the workers' claims itself)."""

    def start(self) -> None:
        """Nothing to start."""

    def running_jobs(self) -> int:
        """How many jobs this type's outside workers hold."""
        return sum(w.jobs for w in self._workers())

    def hurry(self) -> None:
        """End `drain`'s grace period now (a second Ctrl-C)."""
        self._hurry.set()
        self.gateway.released.set()  # wake the drain loop, which then sees the hurry

    async def drain(self, grace_s: float) -> None:
        """Nothing to stop: outside workers' unfinished jobs are rescued at next start."""

    def _workers(self) -> list[WorkerInfo]:
        cutoff = self.clock.now() - self.queue.lease_s
        return [
            WorkerInfo(
                worker_id=w.worker_id,
                state=(WorkerState.BUSY if w.held else WorkerState.IDLE).value,
                jobs=len(w.held),
            )
            for w in self.gateway.workers.values()
            if w.job_type == self.job_type and (w.held or w.last_seen >= cutoff)
        ]

    async def snapshot(self, waiting_by_type: Mapping[str, int] | None = None) -> PoolSnapshot:
        """Workers by state (with pids for processes), waiting jobs and settings
        (`waiting_by_type` as for `Pool.snapshot`)."""
        if waiting_by_type is None:
            waiting_by_type = await self.store.waiting_by_type()
        workers = self._workers()
        counts = dict.fromkeys((s.value for s in WorkerState), 0)
        for worker in workers:
            counts[worker.state] += 1
        waiting = waiting_by_type.get(self.job_type, 0)
        env = dict.fromkeys(self.settings.env, REDACTED)  # it may hold the workers' token
        # A command or folder written with a secret in it shows it no more than the log does.
        command = [redact(part, self.secrets) for part in self.settings.command]
        cwd = None if self.settings.cwd is None else redact(self.settings.cwd, self.secrets)
        return PoolSnapshot(
            job_type=self.job_type,
            workers=counts,
            running_jobs=sum(w.jobs for w in workers),
            waiting=waiting,
            cold_starts=self.cold_starts,
            jobs_finished=self.jobs_finished,
            settings=msgspec.structs.replace(self.settings, env=env, command=command, cwd=cwd),
            processes=workers,
            worker_list=workers,
        )

    def worker_list(self) -> list[WorkerInfo]:
        """Each worker outside jobd and its state."""
        return self._workers()

    def start_backoff(self) -> StartBackoffInfo | None:
        """None: nobody here starts these workers, so no start of theirs fails."""
        return None
