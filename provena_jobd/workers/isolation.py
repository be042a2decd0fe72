"""Poison-job isolation: after jobd died, the jobs it held run again one at a time, alone.

A job whose handler kills the process (os._exit, a segfaulting extension, the OOM killer)
would otherwise take jobd down again at every restart, and each crash would charge an attempt
to every job that happened to run beside it. So at startup the jobs the dead process held
become *suspects*, refunded the attempt they lost (see `JobStore.recover`). Until no suspect
is left, the pools claim nothing, and this service runs the suspects one by one with nothing
beside them. A suspect that finishes (or is requeued by its handler) without taking jobd down
is cleared. One that takes jobd down while running alone is charged at the next start, and
fails once its attempts are used up, saying it is taken to be the cause.

The price: after any crash or kill -9, the jobs that were running rerun one after the other
before the pools resume (cold starts are skipped for them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..clock import Clock
from ..config import QueueSettings, Settings
from ..queue.store import Claim, ClaimedJob, JobStore, Lease
from .pool import Pool
from .runner import JobRunner
from .shutdown import ShutdownTally, return_to_queue, stop_after_grace

log = logging.getLogger(__name__)


class Isolation:
    """Runs crash suspects alone while the pools wait."""

    def __init__(
        self,
        store: JobStore,
        runner: JobRunner,
        clock: Clock,
        settings: Settings,
        pools: dict[str, Pool],
    ) -> None:
        self.store = store
        self.runner = runner
        self.clock = clock
        self.settings = settings
        self.queue: QueueSettings = settings.queue
        self.pools = pools
        self._task: asyncio.Task[None] | None = None
        self.shutdown = ShutdownTally()  # a suspect a shutdown returned to the queue

    async def start(self) -> None:
        """Pause the pools and start running suspects, if there are any."""
        suspects = await self.store.count_suspects()
        if not suspects:
            return
        log.warning(
            "jobd stopped unexpectedly last time; running the %d jobs it held alone first",
            suspects,
            extra={"action": "isolation_started"},
        )
        for pool in self.pools.values():
            pool.paused = True
        self._task = asyncio.create_task(self._run_all(), name="isolation")

    async def stop(self) -> None:
        """Stop (a suspect running now is requeued, still a suspect)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run_all(self) -> None:
        while True:
            try:
                if not await self._run_next():
                    break
            except Exception:
                # A database hiccup (a full disk) must not leave the pools paused for good.
                log.exception("isolation step failed", extra={"action": "isolation_failed"})
                await self.clock.sleep(self.queue.poll_interval_s)
        log.info("isolation finished; the pools resume", extra={"action": "isolation_done"})
        self._resume()

    async def _run_next(self) -> bool:
        """Run the oldest suspect alone; False when none is left."""
        now = self.clock.now()
        job = await self.store.claim_suspect(
            Claim(
                job_type="*",
                limit=1,
                worker_id="isolation",
                now=now,
                lease_expires_at=now + self.queue.lease_s,
            )
        )
        if job is None:
            return False
        await self._run_alone(job)
        return True

    def _resume(self) -> None:
        for pool in self.pools.values():
            pool.paused = False
            pool.notify()

    async def _run_alone(self, job: ClaimedJob) -> None:
        lease = Lease(job.session_id, job.attempt)
        heartbeat = asyncio.create_task(self._heartbeat(lease), name="isolation-heartbeat")
        task, over = self.runner.run_apart(job, self.settings.pool_for(job.job_type))
        try:
            await asyncio.shield(over)
        except asyncio.CancelledError:
            this = asyncio.current_task()
            if this is None or not this.cancelling():  # not a shutdown: the run's own end
                raise RuntimeError(f"the run of suspect {job.session_id} was cancelled") from None
            # jobd is shutting down: stop the handler (it may ignore that, and is then left
            # running); not the job's fault, and it is still a suspect.
            await stop_after_grace(
                self.clock, [over], 0.0, asyncio.Event(), lambda _: self.runner.stop_task(task)
            )
            if not task.done():
                self.runner.keep_until_done(task)
            elif over.done() and not over.cancelled() and over.exception() is not None:
                log.error("the run of suspect %s failed", job.session_id, exc_info=over.exception())
            self.shutdown.add(0, await return_to_queue(self.store, [lease], self.clock.now()))
            raise
        finally:
            heartbeat.cancel()
            # Not `suppress(CancelledError)` around `await heartbeat`: a shutdown's cancel of
            # this task arriving meanwhile would be swallowed with the heartbeat's, and the
            # next suspect would run during the shutdown.
            await asyncio.wait([heartbeat])
            failed = None if heartbeat.cancelled() else heartbeat.exception()
            this = asyncio.current_task()
            if failed is not None and not (this is not None and this.cancelling()):
                raise failed  # as awaiting it would have; but never in place of a shutdown
        await self.store.clear_suspect(job.session_id)

    async def _heartbeat(self, lease: Lease) -> None:
        while True:
            await self.clock.sleep(self.queue.lease_s / 3)
            await self.store.extend_leases([lease], self.clock.now() + self.queue.lease_s)
