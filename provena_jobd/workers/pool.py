"""One job type's autoscaling worker pool: cold start, claiming, heartbeats, idle shutdown.

A "worker" stands in for one of the reference's ECS tasks: it is started when jobs wait,
spends `cold_start_s` provisioning (its jobs stay PENDING meanwhile), then runs up to
`concurrency` jobs at a time and stops after `idle_timeout_s` without work, counted from the
end of its last job. One supervisor loop per pool makes every decision in `tick()`, which
tests call directly with a fake clock.

Two things keep a worker from waiting on the database between jobs. The pool claims jobs
ahead of need (`claim_ahead.py`; the claims themselves: `pool_claims.py`). And a slot comes
free when its handler returns, not when the job's end is committed, so that commit is shared
with the next job's start (the pool counts the job in `jobs_finished` only once its end is
committed).
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
from collections.abc import Mapping

from ..clock import Clock
from ..config import PoolSettings, QueueSettings
from ..errors import StorageError
from ..pool_models import PoolSnapshot, WorkerInfo
from ..queue.store import ClaimedJob, JobStore, Lease
from ..queue.worker_slots import WorkerSlots
from .autoscale import PoolView, next_wake, should_retire, workers_to_start
from .claim_ahead import CLAIM_AT_MOST
from .pool_claims import PoolClaims
from .pool_workers import (
    Worker,
    WorkerState,
    cluster_workers,
    list_workers,
    release_slots,
    renew_slots,
)
from .runner import JobRunner
from .shutdown import ShutdownTally, renewing, stop_after_grace
from .watchdog import HANDLER_TASK_PREFIX
from .worker_logs import log_worker

log = logging.getLogger(__name__)


class Pool:
    """Runs the jobs of one job type."""

    def __init__(
        self,
        job_type: str,
        settings: PoolSettings,
        queue: QueueSettings,
        store: JobStore,
        runner: JobRunner,
        clock: Clock,
        slots: WorkerSlots | None = None,
    ) -> None:
        self.job_type = job_type
        # With several nodes, a worker needs one of the cluster's `max_workers` slots.
        self.slots = slots
        self.settings = settings
        self.queue = queue
        self.store = store
        self.runner = runner
        self.clock = clock
        self.workers: list[Worker] = []
        self.cold_starts = 0
        self.idle_stops = 0  # workers retired after their idle timeout (metrics)
        self.jobs_finished = 0
        self._ids = itertools.count(1)
        # Who claims, in the attempt history: the pool claims ahead for its workers, so it is
        # named, not a worker (and, with several nodes, its node, which the rescuer names).
        claimant = f"{slots.node}/{job_type}" if slots else f"{job_type}-pool"
        self.claims = PoolClaims(job_type, claimant, settings, queue, store)
        # Claimed ahead (DEQUEUED, lease held), waiting for a free slot; oldest first.
        self.ahead = self.claims.ahead
        self._ahead = self.ahead.jobs
        # Jobs whose handler is over while their end is being committed.
        self._finishing: dict[asyncio.Task[None], Lease] = {}
        # While draining: each job's task, and the future its attempt's end resolves.
        self._over: dict[asyncio.Task[None], asyncio.Future[None]] = {}
        # What each job's task starts from: not the context a previous job's handler left.
        self._context = contextvars.copy_context()
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._hurry = asyncio.Event()  # set: the shutdown grace period is over
        # Set while crash suspects run alone (workers/isolation.py): claim nothing.
        self.paused = False
        self._next_heartbeat = 0.0
        self._task: asyncio.Task[None] | None = None
        self.shutdown = ShutdownTally()  # once drained

    # -- control ----------------------------------------------------------------------------

    def notify(self) -> None:
        """Jobs may be waiting or a slot came free: look again now."""
        self._wakeup.set()

    def start(self) -> None:
        """Start the supervisor loop."""
        self._task = asyncio.create_task(self._supervise(), name=f"pool-{self.job_type}")

    async def drain(self, grace_s: float) -> None:
        """Stop claiming, give running jobs `grace_s` to finish, requeue the rest unharmed."""
        self._stopping = True
        self.notify()
        if self._task is not None:
            await self._task
        held = {task: lease for worker in self.workers for task, lease in worker.running.items()}
        held.update(self._finishing)
        # One future per job, resolved once its attempt is over, by whichever task ends it.
        self._over = {task: asyncio.get_running_loop().create_future() for task in held}
        leases = {self._over[task]: lease for task, lease in held.items()}
        # What will not run here goes at once, for other nodes to use during the grace: the
        # jobs claimed ahead (they never started) and the idle workers' cluster slots.
        returned = await self.claims.give_back_held(self.clock.now())
        await self._release([worker for worker in self.workers if not worker.running])
        self.workers = [worker for worker in self.workers if worker.running]

        def stop(unfinished: list[asyncio.Future[None]]) -> None:
            holders = {over: task for task, over in self._over.items()}  # hand-offs moved some
            for over in unfinished:
                self.runner.stop_task(holders[over])

        # The supervisor, which renewed the leases, is over; the grace may outlast a lease,
        # and another node's rescuer would then run these jobs a second time meanwhile.
        async with renewing(self.clock, self.queue.lease_s / 3, self._renew):
            unfinished = set(
                await stop_after_grace(self.clock, list(leases), grace_s, self._hurry, stop)
            )
        for task, over in self._over.items():
            if over in unfinished and not task.done():
                log.warning(
                    "a handler ignored its cancellation at shutdown; abandoned (%s)",
                    task.get_name(),
                    extra={"action": "handler_abandoned"},
                )
                self.runner.keep_until_done(task)
        now = self.clock.now()
        await self._release([w for w in self.workers if w.slot is not None])
        returned += await self.claims.return_held([leases[over] for over in unfinished], now)
        self.shutdown.add(finished=len(held) - len(unfinished), returned=returned)
        self.workers.clear()

    def hurry(self) -> None:
        """End `drain`'s grace period now (a second Ctrl-C): unfinished jobs are requeued."""
        self._hurry.set()

    def running_jobs(self) -> int:
        """How many jobs this pool's workers are running."""
        return sum(len(worker.running) for worker in self.workers) + len(self._finishing)

    # -- the supervisor ---------------------------------------------------------------------

    async def _supervise(self) -> None:
        while not self._stopping:
            try:
                wake_at = await self.tick()
            except StorageError as exc:
                # The database cannot write now (a full disk): one line per try, no traceback.
                log.warning("pool tick failed: %s", exc, extra={"action": "pool_tick_failed"})
                wake_at = self.clock.now() + self.queue.poll_interval_s
            except Exception:
                # A database hiccup must not kill the pool; try again after a poll interval.
                log.exception("pool tick failed", extra={"action": "pool_tick_failed"})
                wake_at = self.clock.now() + self.queue.poll_interval_s
            if self._stopping:
                break
            await self.clock.wait_event(self._wakeup, wake_at - self.clock.now())

    async def tick(self) -> float:
        """Make one round of decisions; returns when the next one is due at the latest."""
        self._wakeup.clear()
        now = self.clock.now()
        if now >= self._next_heartbeat:
            await self._heartbeat(now)
        await self.claims.read_paused(now, self._stopping)
        claiming = not self._stopping and not self.paused and not self.claims.type_paused
        wanted, claimed = await self._claim(now) if claiming else (0, 0)
        ready = [w for w in self.workers if w.state(now) is not WorkerState.PROVISIONING]
        retired = []
        for worker in ready:
            if should_retire(
                len(worker.running), worker.idle_since, now, self.settings.idle_timeout_s
            ):
                self.workers.remove(worker)
                retired.append(worker)
                self.idle_stops += 1
                log_worker(log, self.job_type, worker.worker_id, "stopped")
        await self._release(retired)
        # Jobs wait if some claimed ahead found no slot, or a full claim left more behind.
        waiting = bool(self._ahead) or claimed >= wanted
        # Held back by a pause or a full start limit, more workers would only cost cold starts.
        held = self.claims.held_back(now)
        if waiting and not held and len(self.workers) < self.settings.max_workers:
            await self._scale(now)
        return self._next_wake(now)

    async def _claim(self, now: float) -> tuple[int, int]:
        """Start jobs in the free slots of ready workers, claiming as needed: (wanted, claimed).

        It claims enough to fill the free slots and to hold `ahead.per_worker` jobs ahead per
        ready worker: a slot that comes free takes one at once, and the claim that replaces
        it (a commit away) is back before the slot needs the next. Per worker, not per slot:
        with many slots, claims are large anyway, and a large hoard only makes transactions
        longer. At most `CLAIM_AT_MOST` at a time; a full claim that left slots free looks
        again at once.
        """
        self._fill_slots(now)
        ready, free = self._capacity(now)
        wanted = self.ahead.wanted(free, ready)
        if wanted <= 0:
            return 0, 0
        claimed = await self.claims.claim(wanted, now)
        self._fill_slots(now)
        if claimed >= wanted == CLAIM_AT_MOST:
            self.notify()  # more may wait for the slots still free: claim again now
        return wanted, claimed

    def _capacity(self, now: float) -> tuple[int, int]:
        """The ready (not provisioning) workers, and their free slots."""
        ready = [w for w in self.workers if w.state(now) is not WorkerState.PROVISIONING]
        return len(ready), sum(self.settings.concurrency - len(w.running) for w in ready)

    def set_type_paused(self, paused: bool) -> None:
        """This node paused or resumed the type: act on it now."""
        self.claims.set_type_paused(paused, self.clock.now())
        self.notify()

    def _fill_slots(self, now: float) -> None:
        """Start jobs claimed ahead in free slots, the oldest workers first.

        Oldest first so that surplus workers can go idle and retire.
        """
        if self._stopping:
            return
        concurrency = self.settings.concurrency
        for worker in self.workers:
            if worker.state(now) is WorkerState.PROVISIONING:
                continue
            while self._ahead and len(worker.running) < concurrency:
                if not worker.running:
                    worker.busy_since = now
                job = self._ahead.popleft()
                # Named for the watchdog: the job's handler runs in this task.
                task = asyncio.create_task(
                    self._run(job, worker),
                    name=f"{HANDLER_TASK_PREFIX}{job.session_id}",
                    context=self._context.copy(),
                )
                worker.running[task] = Lease(job.session_id, job.attempt)
            if len(worker.running) < concurrency:
                self.ahead.slot_found_none()

    async def _run(self, job: ClaimedJob, worker: Worker) -> None:
        # The task the pool tracks for this job: this one, whose handler runs in it, or the
        # one that ends the attempt of a handler that ignored its stop (`hand_off`).
        tracked = current = asyncio.current_task()

        def release() -> None:
            # The handler is over: the slot takes the next job while this one's end commits.
            if tracked is not None and tracked in worker.running:
                self._finishing[tracked] = worker.running.pop(tracked)
                worker.idle_since = self.clock.now()
                self._fill_slots(self.clock.now())
                self.notify()

        def hand_off(ending: asyncio.Task[None]) -> None:
            nonlocal tracked
            if tracked is None:
                return
            for held in (worker.running, self._finishing):
                if tracked in held:
                    held[ending] = held.pop(tracked)
            if tracked in self._over:  # a drain waits for this job: now for `ending`
                self._over[ending] = self._over.pop(tracked)
            tracked = ending
            ending.add_done_callback(lambda _: self._job_over(worker, ending))

        try:
            await self.runner.run(job, self.settings, release, hand_off)
        except Exception:
            log.exception("job runner failed", extra={"action": "runner_failed"})
        finally:
            if tracked is current:
                self._job_over(worker, current)

    def _job_over(self, worker: Worker, task: asyncio.Task[None] | None) -> None:
        """A job's attempt is over (its end committed, or it went back): free what it held."""
        if task is not None:
            worker.running.pop(task, None)
            self._finishing.pop(task, None)
            over = self._over.pop(task, None)  # only while draining
            if over is not None:
                over.set_result(None)
        worker.idle_since = self.clock.now()
        self.jobs_finished += 1
        self.notify()

    async def _scale(self, now: float) -> None:
        concurrency = self.settings.concurrency
        cap = self.settings.max_workers * concurrency
        # Jobs claimed ahead wait for a slot just like PENDING ones.
        waiting = await self.store.count_waiting(self.job_type, now, cap) + len(self._ahead)
        ready, free = self._capacity(now)
        provisioning = len(self.workers) - ready
        view = PoolView(waiting=waiting, provisioning=provisioning, ready=ready, free_slots=free)
        for _ in range(workers_to_start(view, self.settings.max_workers, concurrency)):
            slot = None
            if self.slots is not None:
                slot = await self.slots.take(
                    self.job_type, self.settings.max_workers, now, now + self.queue.lease_s
                )
                if slot is None:
                    break  # the cluster runs max_workers already
            ready_at = now + self.settings.cold_start_s
            number = next(self._ids) if slot is None else slot
            worker = Worker(f"{self.job_type}-{number}", ready_at, ready_at, slot=slot)
            self.workers.append(worker)
            self.cold_starts += 1
            log_worker(log, self.job_type, worker.worker_id, "starting")
            if self.settings.cold_start_s <= 0:
                self.notify()  # ready at once: claim on the next round without waiting

    async def _heartbeat(self, now: float) -> None:
        self._next_heartbeat = now + self.queue.lease_s / 3
        self.ahead.heartbeat()
        # Jobs held beyond the (perhaps just reset) reach go back for other nodes to run;
        # first, so that their leases are not extended. What could not go back stays held.
        await self.claims.hand_back_surplus(lambda: self._capacity(now), now)
        await self._renew(now)

    async def _renew(self, now: float) -> None:
        """Extend the leases of every job this pool holds, and its workers' cluster slots."""
        leases = [lease for w in self.workers for lease in w.running.values()]
        leases += [*self._finishing.values()]
        leases += [Lease(job.session_id, job.attempt) for job in self._ahead]
        if leases:
            await self.store.extend_leases(leases, now + self.queue.lease_s)
        if self.slots is not None:  # while draining, only busy workers keep theirs
            workers = [w for w in self.workers if w.running] if self._stopping else self.workers
            await renew_slots(self.slots, self.job_type, workers, now + self.queue.lease_s)

    async def _release(self, workers: list[Worker]) -> None:
        """Give the cluster back the slots of stopped workers."""
        if self.slots is not None:
            await release_slots(self.slots, self.job_type, workers)

    def _next_wake(self, now: float) -> float:
        due = [now + self.queue.poll_interval_s, self._next_heartbeat]
        if self.claims.limited_until > now:
            due.append(self.claims.limited_until)
        return next_wake(due, self.workers, now, self.settings.idle_timeout_s)

    # -- observation ------------------------------------------------------------------------

    @property
    def claimed_ahead(self) -> int:
        """Jobs this pool has claimed (DEQUEUED) that wait for a free slot (for a count with
        the store's, read both while `ahead.moving` is held)."""
        return len(self._ahead)

    def worker_list(self) -> list[WorkerInfo]:
        """Each worker: its state, since when, and when a provisioning one is ready."""
        node = self.slots.node if self.slots else None
        return list_workers(self.workers, self.settings.cold_start_s, self.clock.now(), node)

    def start_backoff(self) -> None:
        """None: in-process workers have no start to fail (only process pools back off)."""

    async def snapshot(
        self, waiting_by_type: Mapping[str, int] | None = None, held: int | None = None
    ) -> PoolSnapshot:
        """The pool's workers by state, waiting jobs and counters (`waiting_by_type`: the
        store's counts and `held` this pool's `claimed_ahead`, both read while `ahead.moving` was
        held, when the caller read them for every pool at once)."""
        if waiting_by_type is None or held is None:
            async with self.ahead.moving:  # only the reads: a claim waits for no more
                waiting_by_type, held = await self.store.waiting_by_type(), self.claimed_ahead
        now = self.clock.now()
        counts = dict.fromkeys((s.value for s in WorkerState), 0)
        for worker in self.workers:
            counts[worker.state(now).value] += 1
        # Jobs claimed ahead are DEQUEUED but still wait for a slot (a slot's job is running).
        waiting = waiting_by_type.get(self.job_type, 0) + held
        return PoolSnapshot(
            processes=await cluster_workers(self.slots, self.job_type, self.workers, now),
            job_type=self.job_type,
            workers=counts,
            running_jobs=self.running_jobs(),
            waiting=waiting,
            cold_starts=self.cold_starts,
            jobs_finished=self.jobs_finished,
            settings=self.settings,
            worker_list=self.worker_list(),
        )
