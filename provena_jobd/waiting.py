"""Why a job that has not started is waiting, in words a user understands.

`explain` is a pure function of the job's place in its queue (and whether it was ever
attempted), its pool's workers (and, for a process pool, its crash-loop back-off), whether its
type is paused, and the time: the API's `waiting` field and the panel's notice come from it.
`why_waiting` gathers those facts for one job from the store and the engine's pools.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import msgspec

from .config import PoolSettings
from .launch_options import scheduled_info
from .models import Job, JobStatus, Waiting, WaitReason
from .pool_models import StartBackoffInfo, WorkerInfo, failed_starts, next_start
from .queue.store import JobStore, QueuePlace

WAITING_STATUSES = frozenset({JobStatus.PENDING, JobStatus.DEQUEUED})


class PoolWorkers(msgspec.Struct, frozen=True, kw_only=True):
    """What `explain` needs of a pool: its workers, the jobs each may run at once, and a
    process pool's back-off after failed starts (None while its processes start well)."""

    workers: list[WorkerInfo]
    concurrency: int
    cold_start_s: float
    start_backoff: StartBackoffInfo | None = None
    # Run by workers outside jobd (`external = true`, no `command`): nothing here starts
    # one, and `workers` are those this node saw claiming within a lease, or holding jobs.
    outside: bool = False


def _in(seconds: float) -> str:
    whole = max(1, round(seconds))
    return f"{whole} s"


def _all_busy(job_type: str, ready: int, starting: int, ahead: int, outside: bool = False) -> str:
    """The `workers_busy` message: the busy workers, those starting, and the jobs ahead."""
    kind = f"outside {job_type}" if outside else job_type
    busy = f"The 1 {kind} worker is busy" if ready == 1 else f"All {ready} {kind} workers are busy"
    if starting:
        busy += f" and {starting} more {'is' if starting == 1 else 'are'} starting"
    if ahead == 0:
        return f"{busy}; it is next."
    jobs = "job is" if ahead == 1 else "jobs are"
    return f"{busy}; {ahead} {jobs} ahead of it."


def _outside(job_type: str, pool: PoolWorkers, ahead: int) -> Waiting:
    """Why a job of an `external = true` type waits: its workers claim when they poll, and
    nothing here starts one (so never a cold start)."""
    if not pool.workers:
        return Waiting(
            reason=WaitReason.NO_WORKER,
            message=f"No outside {job_type} worker has claimed jobs from this jobd lately; "
            "the job starts when one claims it.",
            ahead=ahead,
        )
    # How many jobs an outside worker takes at once is its own choice (each claim's `n`), not
    # `concurrency`: only a worker holding nothing is known to claim again.
    idle = sum(1 for w in pool.workers if w.jobs == 0)
    if idle > ahead:
        return Waiting(
            reason=WaitReason.STARTING,
            message=f"An outside {job_type} worker holds no job; the job starts at its next claim.",
            ahead=ahead,
        )
    if idle:  # fewer idle workers than jobs ahead: those go first
        hold = "holds" if idle == 1 else "hold"
        jobs = "job is" if ahead == 1 else "jobs are"
        message = (
            f"{idle} of the {len(pool.workers)} outside {job_type} workers {hold} no job, "
            f"and {ahead} {jobs} ahead of it."
        )
    else:
        message = _all_busy(job_type, len(pool.workers), 0, ahead, outside=True)
    return Waiting(reason=WaitReason.WORKERS_BUSY, message=message, ahead=ahead)


def _start_failing(
    job_type: str, backoff: StartBackoffInfo, now: float, ahead: int, started_ready_at: float
) -> Waiting:
    """A process pool whose last starts failed: how the last one failed, and when the next
    start is (pausing until `retry_at`), or, once it is under way, when it may be ready
    (`started_ready_at`)."""
    failing = f"No {job_type} worker is running: {failed_starts(backoff)}"
    if backoff.retry_at > now:
        return Waiting(
            reason=WaitReason.START_FAILING,
            message=f"{failing}; {next_start(backoff.retry_at)}, in about "
            f"{_in(backoff.retry_at - now)}.",
            ready_at=backoff.retry_at,
            ahead=ahead,
        )
    return Waiting(
        reason=WaitReason.START_FAILING,
        message=f"{failing}; another is being started, ready in about "
        f"{_in(started_ready_at - now)}.",
        ready_at=started_ready_at,
        ahead=ahead,
    )


def explain(
    place: QueuePlace, pool: PoolWorkers | None, now: float, paused: bool = False
) -> Waiting | None:
    """Why a PENDING or DEQUEUED job waits at `now`; None for any other status.

    `paused`: the job type is paused (POST /admin/pause).
    """
    if place.status not in WAITING_STATUSES:
        return None
    job_type = place.job_type
    if paused:
        return Waiting(
            reason=WaitReason.PAUSED,
            message=f"Job type {job_type} is paused; the job starts once it is resumed.",
        )
    if pool is None:
        return Waiting(
            reason=WaitReason.NO_POOL,
            message=f"No worker pool on this jobd runs job type {job_type}.",
        )
    if place.status is JobStatus.PENDING and place.run_after > now:
        left = _in(place.run_after - now)
        if not place.attempted:
            # Never claimed, yet not claimable now: launched with a delay, not retried.
            return Waiting(
                reason=WaitReason.SCHEDULED,
                message=f"{scheduled_info(place.run_after)} The wait ends in about {left}.",
                ready_at=place.run_after,
            )
        return Waiting(
            reason=WaitReason.BACKING_OFF,
            message=f"Backing off after a failed attempt; the next attempt is in about {left}.",
            ready_at=place.run_after,
        )
    if pool.outside:
        return _outside(job_type, pool, place.ahead)
    ready = [w for w in pool.workers if w.state != "provisioning"]
    starting = sorted(
        w.ready_at for w in pool.workers if w.state == "provisioning" and w.ready_at is not None
    )
    free = sum(max(0, pool.concurrency - w.jobs) for w in ready)
    if free > place.ahead:
        return Waiting(
            reason=WaitReason.STARTING,
            message="A worker has a free slot; the job is about to start.",
            ahead=place.ahead,
        )
    if ready:
        return Waiting(
            reason=WaitReason.WORKERS_BUSY,
            message=_all_busy(job_type, len(ready), len(pool.workers) - len(ready), place.ahead),
            ahead=place.ahead,
            ready_at=starting[0] if starting else None,
        )
    cold_start_over = starting[0] if starting else now + pool.cold_start_s
    if pool.start_backoff is not None:
        # Not a plain cold start: the pool's starts have been failing. It waits out its pause
        # before the next, or the next is under way and may fail as the others did; until a
        # process claims, the job waits on a start that keeps failing either way.
        return _start_failing(job_type, pool.start_backoff, now, place.ahead, cold_start_over)
    if starting:
        return Waiting(
            reason=WaitReason.COLD_START,
            message=f"Waiting for a worker of {job_type} to finish starting (cold start); "
            f"ready in about {_in(starting[0] - now)}.",
            ready_at=starting[0],
            ahead=place.ahead,
        )
    return Waiting(
        reason=WaitReason.COLD_START,
        message=f"No {job_type} worker is running; one is being started (cold start of "
        f"about {_in(pool.cold_start_s)}).",
        ready_at=cold_start_over,
        ahead=place.ahead,
    )


class RunsWorkers(Protocol):
    """A pool, as far as `why_waiting` cares."""

    settings: PoolSettings

    def worker_list(self) -> list[WorkerInfo]:
        """Each worker and its state."""
        ...

    def start_backoff(self) -> StartBackoffInfo | None:
        """A process pool's back-off after failed starts; None for other pools."""
        ...


async def why_waiting(
    store: JobStore,
    job: Job,
    pools: Mapping[str, RunsWorkers],
    now: float,
) -> Waiting | None:
    """Why `job` waits, from the store (its place in the queue, whether its type is paused)
    and its type's pool."""
    if job.status not in WAITING_STATUSES:
        return None
    place = await store.queue_place(job.session_id, now)
    if place is None:
        return None
    paused = place.paused
    found = pools.get(job.job_type)
    pool = None
    if found is not None:
        pool = PoolWorkers(
            workers=found.worker_list(),
            concurrency=found.settings.concurrency,
            cold_start_s=found.settings.cold_start_s,
            start_backoff=found.start_backoff(),
            outside=found.settings.external and not found.settings.command,
        )
    return explain(place, pool, now, paused)
