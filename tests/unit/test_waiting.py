"""Why a job waits: `explain` as a table of (job's place, pool, time) -> reason."""

from __future__ import annotations

import msgspec
import pytest

from provena_jobd.models import JobStatus, WaitReason
from provena_jobd.pool_models import StartBackoffInfo, WorkerInfo
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


def pool(
    *workers: tuple[str, int, float | None], concurrency: int = 1, outside: bool = False
) -> PoolWorkers:
    listed = [
        WorkerInfo(worker_id=f"EMAIL-{i}", state=state, jobs=jobs, ready_at=ready_at)
        for i, (state, jobs, ready_at) in enumerate(workers)
    ]
    return PoolWorkers(workers=listed, concurrency=concurrency, cold_start_s=40.0, outside=outside)


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
        "All 2 EMAIL workers are busy; 3 jobs are ahead of it.",
    ),
    (
        place(ahead=1),
        pool(("busy", 2, None), ("provisioning", 0, NOW + 5), concurrency=2),
        False,
        "workers_busy",
        NOW + 5,
        1,
        "The 1 EMAIL worker is busy and 1 more is starting; 1 job is ahead of it.",
    ),
    (
        place(ahead=2),
        pool(("busy", 1, None), ("provisioning", 0, NOW + 5), ("provisioning", 0, NOW + 7)),
        False,
        "workers_busy",
        NOW + 5,
        2,
        "The 1 EMAIL worker is busy and 2 more are starting; 2 jobs are ahead of it.",
    ),
    (
        place(ahead=4),
        pool(("busy", 1, None), ("busy", 1, None), ("provisioning", 0, NOW + 5)),
        False,
        "workers_busy",
        NOW + 5,
        4,
        "All 2 EMAIL workers are busy and 1 more is starting; 4 jobs are ahead of it.",
    ),
    (
        place(ahead=1),
        pool(("busy", 1, None)),
        False,
        "workers_busy",
        None,
        1,
        "The 1 EMAIL worker is busy; 1 job is ahead of it.",
    ),
    (
        place(ahead=0),
        pool(("busy", 1, None)),
        False,
        "workers_busy",
        None,
        0,
        "The 1 EMAIL worker is busy; it is next.",
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
    # Outside workers (`external = true`): nothing here starts one, so never a cold start.
    (
        place(ahead=2),
        pool(outside=True),
        False,
        "no_worker",
        None,
        2,
        "No outside EMAIL worker has claimed jobs from this jobd lately; the job starts when "
        "one claims it.",
    ),
    (
        place(),
        pool(("idle", 0, None), outside=True),
        False,
        "starting",
        None,
        0,
        "An outside EMAIL worker holds no job; the job starts at its next claim.",
    ),
    (
        place(ahead=2),
        pool(("idle", 0, None), ("busy", 1, None), outside=True),
        False,
        "workers_busy",
        None,
        2,
        "1 of the 2 outside EMAIL workers holds no job, and 2 jobs are ahead of it.",
    ),
    # A worker holding a job may or may not claim more (its claims' `n`): not counted free.
    (
        place(),
        pool(("busy", 1, None), concurrency=4, outside=True),
        False,
        "workers_busy",
        None,
        0,
        "The 1 outside EMAIL worker is busy; it is next.",
    ),
    (
        place(ahead=1),
        pool(("busy", 1, None), outside=True),
        False,
        "workers_busy",
        None,
        1,
        "The 1 outside EMAIL worker is busy; 1 job is ahead of it.",
    ),
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


def failing_pool(exit_code: int | None, retry_at: float, error: str | None = None) -> PoolWorkers:
    """A process pool with no worker, pausing after two failed starts until `retry_at`."""
    backoff = StartBackoffInfo(failures=2, exit_code=exit_code, error=error, retry_at=retry_at)
    return msgspec.structs.replace(pool(), start_backoff=backoff)


def test_a_pool_pausing_after_failed_starts_is_not_a_cold_start() -> None:
    waiting = explain(place(ahead=1), failing_pool(3, NOW + 4), NOW)
    assert waiting is not None
    assert (waiting.reason, waiting.ready_at, waiting.ahead) == (
        WaitReason.START_FAILING,
        NOW + 4,
        1,
    )
    assert waiting.message == (
        "No EMAIL worker is running: 2 worker process starts failed in a row (the last exited "
        "with code 3); next start at 1970-01-01 00:16:44 UTC, in about 4 s."
    )


def test_a_waiting_job_and_its_pool_say_the_failed_starts_in_the_same_words() -> None:
    # `/admin/pool` sends the pool's sentence (the Pools page and `jobd pool` show it); a job
    # waiting on the pool says the same, and how long until the next start.
    failing = failing_pool(-9, NOW + 4)
    backoff = failing.start_backoff
    assert backoff is not None
    assert backoff.message == (
        "2 worker process starts failed in a row (the last was killed by signal 9); next "
        "start at 1970-01-01 00:16:44 UTC."
    )
    waiting = explain(place(), failing, NOW)
    assert waiting is not None
    said = backoff.message.removesuffix(".") + ", in about 4 s."
    assert waiting.message == f"No EMAIL worker is running: {said}"


@pytest.mark.parametrize(
    ("exit_code", "error", "words"),
    [
        (-9, None, "failed in a row (the last was killed by signal 9); next start at"),
        (
            None,
            "FileNotFoundError: no such file",
            "(the last could not be started: FileNotFoundError: no such file); next start at",
        ),
    ],
)
def test_the_start_failing_message_says_how_the_last_start_failed(
    exit_code: int | None, error: str | None, words: str
) -> None:
    waiting = explain(place(), failing_pool(exit_code, NOW + 1, error), NOW)
    assert waiting is not None and words in waiting.message


def test_a_start_under_way_after_failed_starts_says_the_starts_keep_failing() -> None:
    # The pause is over and the pool starts its next process: not a plain cold start, the
    # job waits on a start that has failed twice in a row. A process pool does not know when
    # its process will be ready: about `cold_start_s` from now.
    waiting = explain(place(ahead=1), failing_pool(3, NOW), NOW)
    assert waiting is not None
    assert (waiting.reason, waiting.ready_at, waiting.ahead) == (
        WaitReason.START_FAILING,
        NOW + 40,
        1,
    )
    assert waiting.message == (
        "No EMAIL worker is running: 2 worker process starts failed in a row (the last exited "
        "with code 3); another is being started, ready in about 40 s."
    )
    # A starting worker that says when it is ready gives the time.
    starting = pool(("provisioning", 0, NOW + 12)).workers
    known = msgspec.structs.replace(failing_pool(3, NOW - 5), workers=starting)
    waiting = explain(place(), known, NOW)
    assert waiting is not None
    assert (waiting.reason, waiting.ready_at) == (WaitReason.START_FAILING, NOW + 12)
    assert waiting.message.endswith("another is being started, ready in about 12 s.")


def test_without_failed_starts_a_start_under_way_is_a_cold_start() -> None:
    waiting = explain(place(), pool(), NOW)
    assert waiting is not None
    assert (waiting.reason, waiting.ready_at) == (WaitReason.COLD_START, NOW + 40)
    assert "one is being started (cold start of about 40 s)" in waiting.message


def test_a_ready_worker_or_a_pause_decides_before_a_failing_start() -> None:
    # A running worker with a free slot takes the job whatever the pool's other starts do.
    idle = pool(("idle", 0, None)).workers
    free = msgspec.structs.replace(failing_pool(3, NOW + 4), workers=idle)
    waiting = explain(place(), free, NOW)
    assert waiting is not None and waiting.reason is WaitReason.STARTING
    # A paused type, or a retry's own back-off, is the reason first.
    waiting = explain(place(), failing_pool(3, NOW + 4), NOW, paused=True)
    assert waiting is not None and waiting.reason is WaitReason.PAUSED
    retrying = place(run_after=NOW + 30, attempted=True)
    waiting = explain(retrying, failing_pool(3, NOW + 4), NOW)
    assert waiting is not None and waiting.reason is WaitReason.BACKING_OFF
