"""The worker protocol's engine: jobs handed to workers outside jobd, fenced by their attempt.

Every operation goes through the store's guarded transitions (claim, start, extend_leases,
progress, finish, requeue), so a call from an attempt that no longer holds its job changes
nothing and is answered 409. The gateway also remembers which workers it has seen and what
they hold, for the pools that start worker processes and for `/admin/pool`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from ..clock import Clock, rounded_to_ms
from ..config import QueueSettings, Settings
from ..errors import BadRequest, Conflict, NotFound, PayloadInvalid
from ..flow_control import flow_claim
from ..models import INFO_IN_PROGRESS, Job, JobStatus
from ..payloads import RESULT_MODELS, check
from ..queue.messages import WORKER_LEFT
from ..queue.store import Claim, ClaimedJob, Finish, JobStore, Lease, Requeue
from ..worker_protocol import (
    MAX_CLAIM_WAIT_S,
    AttemptRequest,
    ClaimedWork,
    ClaimRequest,
    FinishRequest,
    LeaseResponse,
    ProgressRequest,
    ReleaseRequest,
    StartRequest,
)
from .runner import BAD_RESULT_SHAPE
from .shutdown import return_to_queue

log = logging.getLogger(__name__)

NOT_EXTERNAL = (
    "Job type {job_type} is run inside jobd; to run it in your own workers set "
    "external = true or command = [...] in [pool.{job_type}] of jobd.toml."
)
UNKNOWN_TYPE = "Unknown job type {job_type}."
NOT_HELD = (
    "Attempt {attempt} no longer holds job {session_id}: it is {status} on attempt {current}. "
    "Stop working on it; nothing was changed."
)
RELEASED = "Returned to the queue by its worker."
CANCELLED_OUTSIDE = (
    "{info} It was running in a worker outside jobd, whose further calls are refused."
)


def _stays() -> bool:
    """The caller of a claim made without a connection to watch never leaves."""
    return False


@dataclass
class RemoteWorker:
    """A worker outside jobd, known by the id it claims with."""

    worker_id: str
    job_type: str
    last_seen: float
    held: set[Lease] = field(default_factory=set)


class WorkerGateway:
    """Claims, heartbeats, progress, finishes and releases for workers outside jobd."""

    def __init__(self, store: JobStore, settings: Settings, clock: Clock) -> None:
        self.store = store
        self.settings = settings
        self.catalog = settings.catalog()  # built once: every claim checks its type against it
        self.queue: QueueSettings = settings.queue
        self.clock = clock
        self.workers: dict[str, RemoteWorker] = {}
        self.finished: Counter[str] = Counter()  # jobs finished per job type
        self.released = asyncio.Event()  # set whenever a worker stops holding a job
        self._arrivals: dict[str, asyncio.Event] = {}
        self._closed = False

    def external(self, job_type: str) -> bool:
        """True when this job type's jobs are run by workers outside jobd."""
        pool = self.settings.pool_for(job_type)
        return pool.external or bool(pool.command)

    # -- waking long polls ----------------------------------------------------------------------

    def notify(self, job_type: str) -> None:
        """Jobs of this type may be waiting: wake the claims that wait for them."""
        event = self._arrivals.pop(job_type, None)
        if event is not None:
            event.set()

    def close(self) -> None:
        """Shutting down: answer every waiting claim now, and hand out nothing more."""
        self._closed = True
        for event in self._arrivals.values():
            event.set()
        self._arrivals.clear()

    # -- the protocol ---------------------------------------------------------------------------

    async def claim(
        self, request: ClaimRequest, gone: Callable[[], bool] = _stays
    ) -> list[ClaimedWork]:
        """Up to `n` jobs; with none waiting, wait up to `wait_s` for one to arrive.

        `gone` says whether the caller has left. Nothing stops a claim whose caller left
        (aiohttp does not cancel its handler), so the poll looks before each try: a poll
        nobody waits for anymore claims nothing. Jobs claimed as the caller leaves go back
        to the queue at once, not after a lease held by nobody.
        """
        if request.job_type not in self.catalog.job_types:
            raise BadRequest(UNKNOWN_TYPE.format(job_type=request.job_type))
        if not self.external(request.job_type):
            raise BadRequest(NOT_EXTERNAL.format(job_type=request.job_type))
        deadline = self.clock.now() + request.wait_s
        worker = self._seen(request.worker_id, request.job_type)
        while not self._closed and not gone():
            # Take the event before claiming, so a launch between the two still wakes us.
            event = self._arrivals.setdefault(request.job_type, asyncio.Event())
            now = self.clock.now()
            claim = Claim(
                job_type=request.job_type,
                limit=request.n,
                worker_id=request.worker_id,
                now=now,
                lease_expires_at=now + self.queue.lease_s,
            )
            # Within the type's pause and start limits, like jobd's own pools.
            pool = self.settings.pool_for(request.job_type)
            jobs = (await self.store.claim_flow(flow_claim(claim, pool))).jobs
            if jobs and gone():
                await self._give_back(request, jobs)
                return []
            if jobs or now >= deadline:
                worker.last_seen = self.clock.now()
                worker.held.update(Lease(job.session_id, job.attempt) for job in jobs)
                # As stored, to the millisecond (as every epoch time jobd shows).
                expires = rounded_to_ms(now + self.queue.lease_s)
                return [self._work(job, expires) for job in jobs]
            # Wake for an arrival, and at least every poll interval for jobs whose back-off
            # ended (nothing announces those).
            wait = min(deadline - now, self.queue.poll_interval_s)
            await self.clock.wait_event(event, wait)
        return []

    async def _give_back(self, request: ClaimRequest, jobs: list[ClaimedJob]) -> None:
        """Return jobs claimed for a caller that left before its answer: PENDING again in
        their place in the queue, the attempt refunded, since nobody was ever handed them
        (so no worker can hold this attempt number and write under it later)."""
        leases = [Lease(job.session_id, job.attempt) for job in jobs]
        await return_to_queue(self.store, leases, self.clock.now(), WORKER_LEFT)
        self.notify(request.job_type)  # another worker's claim may be waiting for them
        log.info(
            "worker %s left before its claim was answered; %d %s job%s returned to the "
            "queue, attempt not counted: %s",
            request.worker_id,
            len(jobs),
            request.job_type,
            "" if len(jobs) == 1 else "s",
            ", ".join(lease.session_id for lease in leases),
            extra={"action": "claim_returned", "worker_id": request.worker_id},
        )

    async def start(self, request: StartRequest) -> Job:
        """DEQUEUED -> IN_PROGRESS."""
        lease = Lease(request.session_id, request.attempt)
        await self._check_outside(lease)
        info = request.info or INFO_IN_PROGRESS
        now = self.clock.now()
        if not await self.store.start(lease, info, now):
            raise await self._not_held(lease)
        # A start answers before its commit (see `SqliteStore.start`); renewing the lease is a
        # durable write behind it in the same writer, so once it returns the worker is shown
        # the job IN_PROGRESS, as committed.
        await self.store.extend_leases([lease], now + self.queue.lease_s)
        self._touch(lease)
        return await self._job(lease.session_id)

    async def heartbeat(self, request: AttemptRequest) -> LeaseResponse:
        """Push the lease forward by `lease_s`."""
        lease = Lease(request.session_id, request.attempt)
        expires = rounded_to_ms(self.clock.now() + self.queue.lease_s)
        if not await self.store.extend_leases([lease], expires):
            raise await self._not_held(lease)
        self._touch(lease)
        return LeaseResponse(
            session_id=lease.session_id, attempt=lease.attempt, lease_expires_at=expires
        )

    async def progress(self, request: ProgressRequest) -> Job:
        """Show progress on a running job."""
        lease = Lease(request.session_id, request.attempt)
        if not await self.store.progress(lease, request.info, request.fraction):
            raise await self._not_held(lease)
        self._touch(lease)
        return await self._job(lease.session_id)

    async def finish(self, request: FinishRequest) -> Job:
        """End the attempt; a SUCCEEDED result that does not fit the sub type ends it FAILED."""
        lease = Lease(request.session_id, request.attempt)
        job = await self._outside_job(lease)
        status = JobStatus(request.status)
        info, result = request.info, request.result
        if status is JobStatus.SUCCEEDED:
            try:
                check(RESULT_MODELS, job.job_sub_type, result or {})
            except PayloadInvalid as exc:
                status, result = JobStatus.FAILED, None
                info = BAD_RESULT_SHAPE.format(sub_type=job.job_sub_type, error=exc)
        finished = await self.store.finish(
            Finish(
                session_id=lease.session_id,
                attempt=lease.attempt,
                status=status,
                info=info,
                result=None if result is None else msgspec.json.encode(result),
                now=self.clock.now(),
            )
        )
        self._drop(lease)
        if not finished:
            raise await self._not_held(lease)
        job = await self._job(lease.session_id)
        self.finished[job.job_type] += 1
        return job

    async def release(self, request: ReleaseRequest) -> Job:
        """Give the job back: PENDING again; its next claim is a new attempt."""
        lease = Lease(request.session_id, request.attempt)
        await self._check_outside(lease)
        now = self.clock.now()
        released = await self.store.requeue(
            Requeue(
                session_id=lease.session_id,
                attempt=lease.attempt,
                info=request.info or RELEASED,
                run_after=now + request.delay_s,
                now=now,
                # Not refunded: the next claim must get a new attempt number, or this worker
                # could still write to the job once another holds it.
                refund=False,
            )
        )
        self._drop(lease)
        if released is None:
            raise await self._not_held(lease)
        return await self._job(lease.session_id)  # FAILED if it was cancelled meanwhile

    async def cancel_running(self, job: Job, info: str) -> Job:
        """End a job an outside worker runs FAILED now; its worker learns at its next call."""
        await self.store.finish(
            Finish(
                session_id=job.session_id,
                attempt=job.attempt,
                status=JobStatus.FAILED,
                info=CANCELLED_OUTSIDE.format(info=info),
                result=None,
                now=self.clock.now(),
            )
        )
        return await self._job(job.session_id)

    # -- what the gateway knows of its workers ----------------------------------------------

    def worker(self, worker_id: str) -> RemoteWorker | None:
        """A worker that has claimed at least once, or None."""
        return self.workers.get(worker_id)

    def forget(self, worker_id: str) -> set[Lease]:
        """Drop a worker (its process ended); returns the leases it still held."""
        worker = self.workers.pop(worker_id, None)
        return set() if worker is None else worker.held

    def _seen(self, worker_id: str, job_type: str) -> RemoteWorker:
        self._prune()
        worker = self.workers.get(worker_id)
        if worker is None or worker.job_type != job_type:
            worker = RemoteWorker(worker_id, job_type, self.clock.now())
            self.workers[worker_id] = worker
        worker.last_seen = self.clock.now()
        return worker

    def _prune(self) -> None:
        """Forget workers that hold nothing and have not called for longer than a long poll
        and a lease: they are gone (outside workers pick fresh ids as they please)."""
        cutoff = self.clock.now() - 2 * MAX_CLAIM_WAIT_S - self.queue.lease_s
        for worker_id in [
            w.worker_id for w in self.workers.values() if not w.held and w.last_seen < cutoff
        ]:
            del self.workers[worker_id]

    def _touch(self, lease: Lease) -> None:
        for worker in self.workers.values():
            if lease in worker.held:
                worker.last_seen = self.clock.now()

    def _drop(self, lease: Lease) -> None:
        for worker in self.workers.values():
            if lease in worker.held:
                worker.held.discard(lease)
                worker.last_seen = self.clock.now()
                self.released.set()

    def _work(self, job: ClaimedJob, lease_expires_at: float) -> ClaimedWork:
        return ClaimedWork(
            session_id=job.session_id,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            created_timestamp=job.created_timestamp,
            username=job.username,
            batch_id=job.batch_id,
            job_type=job.job_type,
            job_sub_type=job.job_sub_type,
            payload=msgspec.json.decode(job.payload),
            lease_expires_at=lease_expires_at,
        )

    async def _job(self, session_id: str) -> Job:
        job = await self.store.get(session_id)
        if job is None:
            raise NotFound()
        return job

    async def _outside_job(self, lease: Lease) -> Job:
        """The job, if outside workers run its type; else the 409 of a job not held.

        jobd's own pools hold the jobs of the other types: a worker's start, finish or
        release of one must be refused here, since the pool may start a job it claimed
        without waiting for its start's commit (`SqliteStore.start_at_once`), trusting
        that only its own writes touch it.
        """
        job = await self._job(lease.session_id)
        if not self.external(job.job_type):
            raise await self._not_held(lease, job)
        return job

    async def _check_outside(self, lease: Lease) -> None:
        """As `_outside_job`, without a read for a lease this gateway handed out (claims
        give only outside workers' types)."""
        if not any(lease in worker.held for worker in self.workers.values()):
            await self._outside_job(lease)

    async def _not_held(self, lease: Lease, job: Job | None = None) -> Exception:
        """The 409 for a refused call (400 for a job that does not exist at all); `job`,
        if the caller has just read it."""
        self._drop(lease)
        if job is None:
            job = await self.store.get(lease.session_id)
        if job is None:
            return NotFound()
        return Conflict(
            NOT_HELD.format(
                attempt=lease.attempt,
                session_id=lease.session_id,
                status=job.status.value,
                current=job.attempt,
            )
        )
