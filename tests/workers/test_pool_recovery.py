"""Worker pools on real SQLite, driven by a fake clock: retries, heartbeats, rescue of lost
workers, restarts after a crash and graceful shutdown, jobs claimed ahead included."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from provena_jobd.clock import FakeClock
from provena_jobd.errors import RetryLater, StorageError
from provena_jobd.models import JobStatus, JobSubType, JobType
from provena_jobd.queue.store import Claim, ClaimedJob, Lease, Requeue, Rescue
from provena_jobd.server import JobdServer
from provena_jobd.workers.handlers import JobContext
from provena_jobd.workers.pool import Pool
from provena_jobd.workers.shutdown import ShutdownTally
from tests.helpers import eventually, job_in, settle
from tests.workers.pool_helpers import (
    DONE,
    Starter,
    advance,
    blocking_handler,
    holds,
    launch,
    sleeping_handler,
)


async def test_retry_later_backs_off_then_runs_again(start: Starter, clock: FakeClock) -> None:
    attempts: list[int] = []

    async def flaky(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        attempts.append(context.attempt)
        if context.attempt < 3:
            raise RetryLater("SMTP server busy")
        return {"sent": True}

    server = await start(
        {JobSubType.SEND_EMAIL: flaky}, queue={"backoff_base_s": 10, "poll_interval_s": 1}
    )
    session_id = await launch(server)

    async def attempted(n: int) -> bool:
        job = await server.store.get(session_id)
        return len(attempts) == n and job is not None and job.status is JobStatus.PENDING

    await eventually(lambda: attempted(1), what="the first attempt to be requeued")
    job = await server.store.get(session_id)
    assert job is not None and job.info is not None and "retried after 10 s" in job.info
    await advance(server, clock, 9)
    await settle()
    assert attempts == [1]
    await advance(server, clock, 1)
    await eventually(lambda: attempted(2), what="the second attempt")
    await advance(server, clock, 20)  # second back-off: 2 x base
    job = await job_in(server.store, session_id, *DONE)
    assert (job.status, job.attempt, attempts) == (JobStatus.SUCCEEDED, 3, [1, 2, 3])


async def test_retry_later_gives_up_after_max_attempts(start: Starter, clock: FakeClock) -> None:
    async def always_busy(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        raise RetryLater("busy")

    server = await start(
        {JobSubType.SEND_EMAIL: always_busy},
        pool={"max_attempts": 2},
        queue={"backoff_base_s": 1, "poll_interval_s": 1},
    )
    session_id = await launch(server)
    await eventually(
        lambda: _has_attempt(server, session_id, 1, JobStatus.PENDING), what="first requeue"
    )
    await advance(server, clock, 1)
    job = await job_in(server.store, session_id, *DONE)
    assert job.status is JobStatus.FAILED and job.attempt == 2
    assert job.info == "Job failed, err: busy (gave up after 2 attempts)."


async def _has_attempt(
    server: JobdServer, session_id: str, attempt: int, status: JobStatus
) -> bool:
    job = await server.store.get(session_id)
    return job is not None and job.attempt == attempt and job.status is status


async def test_heartbeats_keep_a_long_job_from_being_rescued(
    start: Starter, clock: FakeClock
) -> None:
    server = await start(
        {JobSubType.SEND_EMAIL: sleeping_handler(100)},
        queue={"lease_s": 30, "rescue_interval_s": 5},
    )
    session_id = await launch(server)
    await job_in(server.store, session_id, JobStatus.IN_PROGRESS)
    pool = server.pools[JobType.EMAIL]
    assert isinstance(pool, Pool)
    for _ in range(20):
        await advance(server, clock, 5)
        # The pool's tick at this time, heartbeat included, is written before time moves on.
        # (Its own loop may still be in a tick that read the clock before the jump, whose
        # heartbeat would then extend the lease from a time already past.)
        await pool.tick()
        await server.store.idle()
    job = await job_in(server.store, session_id, *DONE)
    assert (job.status, job.attempt) == (JobStatus.SUCCEEDED, 1)


async def ghost_claim(server: JobdServer, clock: FakeClock) -> ClaimedJob:
    """Claim the one waiting EMAIL job for a "ghost" worker, leased for 30 s."""
    [ghost] = await server.store.claim(
        Claim(
            job_type=JobType.EMAIL,
            limit=1,
            worker_id="ghost",
            now=clock.now(),
            lease_expires_at=clock.now() + 30,
        )
    )
    return ghost


async def test_a_job_whose_worker_vanished_is_rescued_when_its_lease_expires(
    start: Starter, clock: FakeClock
) -> None:
    # The pool's worker is still provisioning, so the job can only be held by a "ghost"
    # claimant that then dies (as another process's worker would).
    server = await start(pool={"cold_start_s": 100}, queue={"lease_s": 30})
    session_id = await launch(server, JobSubType.EMAIL_WAKE_UP)
    ghost = await ghost_claim(server, clock)
    assert ghost.session_id == session_id
    await advance(server, clock, 29)
    assert await server.rescuer.run_once() == []
    await advance(server, clock, 2)
    rescued = await server.rescuer.run_once()
    assert [(r.session_id, r.status) for r in rescued] == [(session_id, JobStatus.PENDING)]
    await advance(server, clock, 100)  # the worker is ready, the back-off has passed
    job = await job_in(server.store, session_id, *DONE)
    assert (job.status, job.attempt) == (JobStatus.SUCCEEDED, 2)


async def test_a_cancelled_job_whose_worker_vanished_ends_failed_and_is_not_requeued(
    start: Starter, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    # Cancelled while a "ghost" worker runs it (another process, nobody here to interrupt).
    server = await start(pool={"cold_start_s": 100}, queue={"lease_s": 30})
    session_id = await launch(server, JobSubType.EMAIL_WAKE_UP)
    ghost = await ghost_claim(server, clock)
    assert await server.store.start(Lease(session_id, ghost.attempt), "running", clock.now())
    _, running = await server.service.cancel(session_id, None, "alice")
    assert running
    await advance(server, clock, 31)
    rescued = await server.rescuer.run_once()
    assert [(r.session_id, r.status) for r in rescued] == [(session_id, JobStatus.FAILED)]
    assert "1 requeued" not in caplog.text and "0 requeued, 1 ended FAILED" in caplog.text
    await advance(server, clock, 100)  # the pool's worker is ready: nothing for it to run
    job = await server.store.get(session_id)
    assert job is not None and (job.status, job.attempt) == (JobStatus.FAILED, 1)
    assert job.info == (
        "Cancelled by alice. It was running; anything it had launched was discarded."
    )


async def test_jobs_left_running_by_a_dead_process_are_requeued_at_start(
    tmp_path: Path, start: Starter, clock: FakeClock
) -> None:
    from provena_jobd.queue.sqlite import SqliteStore

    # A "previous process": a job is launched and claimed, then the process dies.
    first = await start(pool={"cold_start_s": 1_000})
    session_id = await launch(first, JobSubType.EMAIL_WAKE_UP)
    await first.stop(grace_s=0)
    dead = SqliteStore(tmp_path / "jobd.db")
    await dead.open()
    held = await dead.claim(
        Claim(
            job_type=JobType.EMAIL,
            limit=1,
            worker_id="dead",
            now=clock.now(),
            lease_expires_at=clock.now() + 3_600,
        )
    )
    assert [h.session_id for h in held] == [session_id]
    await dead.close()
    # The restart requeues it at once, long before the lease would expire; the lost run is
    # not counted against the job (it ran beside others: see workers/isolation.py).
    second = await start()
    job = await job_in(second.store, session_id, *DONE)
    assert (job.status, job.attempt) == (JobStatus.SUCCEEDED, 1)


async def test_graceful_stop_requeues_unfinished_jobs_without_using_an_attempt(
    start: Starter, clock: FakeClock
) -> None:
    handler, _, _ = blocking_handler()
    server = await start({JobSubType.SEND_EMAIL: handler})
    session_id = await launch(server)
    await job_in(server.store, session_id, JobStatus.IN_PROGRESS)
    stopping = asyncio.create_task(server.stop(grace_s=5))
    await settle()
    await advance(server, clock, 5)
    await stopping
    reopened = await start({JobSubType.SEND_EMAIL: sleeping_handler(0)})
    job = await job_in(reopened.store, session_id, *DONE)
    assert (job.status, job.attempt) == (JobStatus.SUCCEEDED, 1)


async def test_graceful_stop_lets_a_job_finish_within_the_grace_period(
    start: Starter, clock: FakeClock
) -> None:
    server = await start({JobSubType.SEND_EMAIL: sleeping_handler(3)})
    session_id = await launch(server)
    await job_in(server.store, session_id, JobStatus.IN_PROGRESS)
    stopping = asyncio.create_task(server.stop(grace_s=10))
    await settle()
    await advance(server, clock, 3)
    await stopping
    reopened = await start()
    job = await reopened.store.get(session_id)
    assert job is not None and (job.status, job.attempt) == (JobStatus.SUCCEEDED, 1)


async def held_ahead(server: JobdServer, count: int) -> None:
    """Wait until the EMAIL pool holds `count` jobs claimed ahead (DEQUEUED, not started)."""

    async def ahead() -> bool:
        pool = server.pools[JobType.EMAIL]
        assert isinstance(pool, Pool)
        return pool.claimed_ahead == count

    await eventually(ahead, what=f"{count} jobs claimed ahead")


async def test_a_job_claimed_ahead_and_then_cancelled_never_starts(start: Starter) -> None:
    handler, release, started = blocking_handler()
    server = await start({JobSubType.SEND_EMAIL: handler}, pool={"max_workers": 1})
    first, second, third = [await launch(server) for _ in range(3)]
    await job_in(server.store, first, JobStatus.IN_PROGRESS)
    await held_ahead(server, 2)
    assert (await job_in(server.store, second, JobStatus.DEQUEUED)).status is JobStatus.DEQUEUED

    job, running = await server.service.cancel(second, None, "alice")
    assert (job.status, running) == (JobStatus.FAILED, False)
    release.set()
    assert (await job_in(server.store, third, *DONE)).status is JobStatus.SUCCEEDED
    assert started == [first, third]
    cancelled = await server.store.get(second)
    assert cancelled is not None and cancelled.status is JobStatus.FAILED
    assert cancelled.started_timestamp is None


async def test_graceful_stop_returns_jobs_claimed_ahead_without_using_an_attempt(
    start: Starter, clock: FakeClock
) -> None:
    handler, release, _ = blocking_handler()
    server = await start({JobSubType.SEND_EMAIL: handler}, pool={"max_workers": 1})
    first, *waiting = [await launch(server) for _ in range(3)]
    await job_in(server.store, first, JobStatus.IN_PROGRESS)
    await held_ahead(server, 2)
    stopping = asyncio.create_task(server.stop(grace_s=5))
    await settle()
    release.set()
    await stopping
    # Requeued with the attempt refunded; left DEQUEUED, a restart would count it as used.
    reopened = await start({JobSubType.SEND_EMAIL: sleeping_handler(0)})
    for session_id in waiting:
        job = await job_in(reopened.store, session_id, *DONE)
        assert (job.status, job.attempt) == (JobStatus.SUCCEEDED, 1)


async def test_a_draining_pool_keeps_its_jobs_leases_through_a_long_grace(
    start: Starter, clock: FakeClock
) -> None:
    # With several nodes, another node's rescuer would take a job whose lease ran out while
    # this one still runs it in its shutdown grace: it would run twice. (Only the pool drains
    # here: the server's own rescuer still runs, as another node's would.)
    handler, release, started = blocking_handler()
    server = await start({JobSubType.SEND_EMAIL: handler}, queue={"lease_s": 30})
    session_id = await launch(server)
    await eventually(lambda: holds(started == [session_id]), what="the job to start")
    pool = server.pools[JobType.EMAIL]
    assert isinstance(pool, Pool)
    draining = asyncio.create_task(pool.drain(grace_s=120))
    for _ in range(9):  # 90 s: three leases
        await clock.advance(10)
        await server.store.idle()
        now = clock.now()
        # What another node's rescuer would do now: nothing, the lease is alive.
        assert await server.store.rescue(Rescue(now=now, horizon=now)) == []
    release.set()
    await asyncio.wait_for(draining, 5)
    job = await job_in(server.store, session_id, *DONE)
    assert (job.status, job.attempt) == (JobStatus.SUCCEEDED, 1)


async def one_running_two_ahead(
    start: Starter,
) -> tuple[JobdServer, Pool, list[str], asyncio.Event]:
    """An EMAIL pool of one worker running a job until `release` is set, with two claimed
    ahead (their ids)."""
    handler, release, started = blocking_handler()
    server = await start({JobSubType.SEND_EMAIL: handler}, pool={"max_workers": 1})
    pool = server.pools[JobType.EMAIL]
    assert isinstance(pool, Pool)
    ids = [await launch(server) for _ in range(3)]
    await eventually(
        lambda: holds(len(started) == 1 and pool.claimed_ahead == 2), what="two claimed ahead"
    )
    return server, pool, [session_id for session_id in ids if session_id not in started], release


async def test_a_draining_pool_gives_back_the_jobs_it_claimed_ahead_at_once(
    start: Starter, clock: FakeClock
) -> None:
    # They never started: another node may run them during this one's grace period.
    server, pool, ahead, release = await one_running_two_ahead(start)
    draining = asyncio.create_task(pool.drain(grace_s=60))
    for session_id in ahead:  # PENDING while the running one still has its grace
        await job_in(server.store, session_id, JobStatus.PENDING)
    assert not draining.done()
    release.set()
    await asyncio.wait_for(draining, 5)
    assert pool.shutdown == ShutdownTally(finished=1, returned=2)


async def test_a_failed_early_give_back_still_drains_and_returns_them_at_the_end(
    start: Starter, clock: FakeClock
) -> None:
    server, pool, ahead, release = await one_running_two_ahead(start)
    # The disk is full as the drain starts: both requeues of the early give-back fail.
    requeue = pool.claims.store.requeue
    failures = [StorageError("write failed: disk full") for _ in range(2)]

    async def fails_once(request: Requeue) -> JobStatus | None:
        if failures:
            raise failures.pop()
        return await requeue(request)

    pool.claims.store.requeue = fails_once  # type: ignore[method-assign, assignment]
    draining = asyncio.create_task(pool.drain(grace_s=60))
    await settle()
    assert not draining.done()  # the grace goes on
    release.set()
    await asyncio.wait_for(draining, 5)
    for session_id in ahead:  # given back at the end instead
        await job_in(server.store, session_id, JobStatus.PENDING)
    assert pool.shutdown == ShutdownTally(finished=1, returned=2)
