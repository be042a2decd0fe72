"""Why a job waits: `explain` as a table of (job's place, pool, time) -> reason."""

from __future__ import annotations

import pytest

from provena_jobd.models import JobStatus, WaitReason
from provena_jobd.pool_models import WorkerInfo
from provena_jobd.queue.store import QueuePlace
from provena_jobd.waiting import PoolWorkers, explain

NOW = 1_000.0


def place(
    status: JobStatus = JobStatus.PENDING,
    run_after: float = NOW,
    ahead: int = 0,
    attempted: bool = False,
) -> QueuePlace:
    return QueuePlace(
        status=status, job_type="EMAIL", run_after=run_after, ahead=ahead, attempted=attempted
    )


def pool(*workers: tuple[str, int, float | None], concurrency: int = 1) -> PoolWorkers:
    listed = [
        WorkerInfo(worker_id=f"EMAIL-{i}", state=state, jobs=jobs, ready_at=ready_at)
        for i, (state, jobs, ready_at) in enumerate(workers)
    ]
    return PoolWorkers(workers=listed, concurrency=concurrency, cold_start_s=40.0)


CASES = [
    # (place, pool, paused) -> reason, ready_at, ahead, words in the message
    (
        place(),
        pool(("provisioning", 0, NOW + 12)),
        False,
        "cold_start",
        NOW + 12,
        0,
        "ready in about 12 s",
    ),
    (place(), pool(), False, "cold_start", NOW + 40, 0, "cold start of about 40 s"),
    (
        place(ahead=3),
        pool(("busy", 1, None), ("busy", 1, None)),
        False,
        "workers_busy",
        None,
        3,
        "All 2 EMAIL workers are busy; 3 jobs are ahead",
    ),
    (
        place(ahead=1),
        pool(("busy", 2, None), ("provisioning", 0, NOW + 5), concurrency=2),
        False,
        "workers_busy",
        NOW + 5,
        1,
        "1 job is ahead",
    ),
    # Claimed before, and not claimable until later: a retry's back-off.
    (
        place(run_after=NOW + 30, attempted=True),
        pool(("idle", 0, None)),
        False,
        "backing_off",
        NOW + 30,
        None,
        "next attempt is in about 30 s",
    ),
    # Never claimed, and not claimable until later: launched with a delay, in its info's words.
    (
        place(run_after=NOW + 30),
        pool(("idle", 0, None)),
        False,
        "scheduled",
        NOW + 30,
        None,
        "Scheduled: waits until 1970-01-01 00:17:10 UTC before it runs. The wait ends in about "
        "30 s.",
    ),
    # A delayed job of a paused type waits for the resume, whatever its time.
    (place(run_after=NOW + 30), pool(("idle", 0, None)), True, "paused", None, None, "paused"),
    (place(), None, False, "no_pool", None, None, "No worker pool"),
    (place(), pool(("idle", 0, None)), True, "paused", None, None, "EMAIL is paused"),
    (
        place(ahead=1),
        pool(("busy", 1, None), concurrency=3),
        False,
        "starting",
        None,
        1,
        "free slot",
    ),
    (
        place(JobStatus.DEQUEUED, ahead=2),
        pool(("busy", 4, None), concurrency=4),
        False,
        "workers_busy",
        None,
        2,
        "busy",
    ),
    # A backing-off job that is DEQUEUED again is not backing off any more.
    (
        place(JobStatus.DEQUEUED, run_after=NOW + 30),
        pool(("idle", 0, None)),
        False,
        "starting",
        None,
        0,
        "about to start",
    ),
]


@pytest.mark.parametrize(
    ("where", "workers", "paused", "reason", "ready_at", "ahead", "words"), CASES
)
def test_why_a_job_waits(
    where: QueuePlace,
    workers: PoolWorkers | None,
    paused: bool,
    reason: str,
    ready_at: float | None,
    ahead: int | None,
    words: str,
) -> None:
    waiting = explain(where, workers, NOW, paused)
    assert waiting is not None
    assert (waiting.reason, waiting.ready_at, waiting.ahead) == (
        WaitReason(reason),
        ready_at,
        ahead,
    )
    assert words in waiting.message


@pytest.mark.parametrize("status", [JobStatus.IN_PROGRESS, JobStatus.SUCCEEDED, JobStatus.FAILED])
def test_a_job_that_started_or_ended_is_not_waiting(status: JobStatus) -> None:
    assert explain(place(status), pool(), NOW) is None
