"""The store contract, cancels and recovery: cancelling waiting and running jobs, requeues,
rescues and crash recovery, and the kept history of attempts. Runs on real databases only."""

from __future__ import annotations

import math

import pytest

from provena_jobd.models import JobStatus, JobType
from provena_jobd.queue.messages import WORKER_LEFT
from provena_jobd.queue.store import (
    Backoff,
    Claim,
    ClaimedJob,
    JobStore,
    Lease,
    Prune,
    Requeue,
    Rescue,
)

from .contract_helpers import NOW, StoreFactory, claim_one, finish, new_job


async def test_a_cancel_recorded_on_a_running_job_keeps_it_from_succeeding(
    store: JobStore,
) -> None:
    await store.launch([new_job()])
    held = await claim_one(store)
    assert await store.start(Lease(held.session_id, held.attempt), "running", NOW)
    outcome = await store.cancel(held.session_id, "Cancelled by admin.", NOW + 1)
    assert (outcome.status, outcome.ended) == (JobStatus.IN_PROGRESS, False)
    assert not await store.finish(finish(held, JobStatus.SUCCEEDED, now=NOW + 2))
    assert await store.finish(finish(held, JobStatus.FAILED, now=NOW + 2))
    job = await store.get(held.session_id)
    assert job is not None and job.status is JobStatus.FAILED


# A running job whose cancel is recorded must never run again: whatever would put it back
# in the queue (a shutdown, a retry, a lost worker, a crash) ends it FAILED instead, with the
# words a user sees when a running job is cancelled normally.
CANCELLED = "Cancelled by carol. It was running; anything it had launched was discarded."


async def cancelled_while_running(store: JobStore, max_attempts: int = 3) -> ClaimedJob:
    """A job claimed at NOW, started at NOW + 1 and cancelled at NOW + 2 (still running)."""
    await store.launch([new_job(max_attempts=max_attempts)])
    held = await claim_one(store)
    assert await store.start(Lease(held.session_id, held.attempt), "running", NOW + 1)
    outcome = await store.cancel(held.session_id, "Cancelled by carol.", NOW + 2)
    assert (outcome.status, outcome.ended) == (JobStatus.IN_PROGRESS, False)
    return held


async def assert_ended_cancelled(store: JobStore, held: ClaimedJob, at: float) -> None:
    """FAILED at `at` with the cancel's words, its attempt ended `cancelled`, never claimable."""
    job = await store.get(held.session_id)
    assert job is not None
    assert (job.status, job.info, job.attempt) == (JobStatus.FAILED, CANCELLED, held.attempt)
    assert (job.started_timestamp, job.finished_timestamp) == (NOW + 1, at)
    [attempt] = await store.attempts(held.session_id)
    assert (attempt.outcome, attempt.ended_at, attempt.retry_at) == ("cancelled", at, None)
    assert await store.count_waiting(JobType.EMAIL, NOW + 10_000, 10) == 0
    claim = Claim(
        job_type=JobType.EMAIL, limit=10, worker_id="w2", now=NOW + 10_000, lease_expires_at=NOW
    )
    assert await store.claim(claim) == []


@pytest.mark.parametrize("refund", [True, False], ids=["shutdown", "retry"])
async def test_a_requeue_ends_a_cancelled_running_job_instead(
    store: JobStore, refund: bool
) -> None:
    held = await cancelled_while_running(store)
    requeue = Requeue(
        session_id=held.session_id,
        attempt=held.attempt,
        info="Requeued: jobd shut down",
        run_after=NOW + 3,
        refund=refund,
        now=NOW + 3,
    )
    assert await store.requeue(requeue) is JobStatus.FAILED
    await assert_ended_cancelled(store, held, NOW + 3)
    before = await store.get(held.session_id)
    assert await store.requeue(requeue) is None  # the attempt no longer holds the job
    assert await store.get(held.session_id) == before


async def test_a_rescue_ends_a_cancelled_running_job_and_requeues_the_others(
    store: JobStore,
) -> None:
    held = await cancelled_while_running(store)
    await store.launch([plain := new_job()])
    await claim_one(store)
    rescued = await store.rescue(Rescue(now=NOW + 31, horizon=NOW + 31))
    assert {(r.session_id, r.status, r.worker_id) for r in rescued} == {
        (held.session_id, JobStatus.FAILED, "w1"),
        (plain.session_id, JobStatus.PENDING, "w1"),
    }
    job = await store.get(plain.session_id)
    assert job is not None and (job.status, job.finished_timestamp) == (JobStatus.PENDING, None)
    assert (await claim_one(store, now=NOW + 31)).session_id == plain.session_id
    await assert_ended_cancelled(store, held, NOW + 31)


async def test_a_cancel_outranks_giving_up_on_the_last_attempt(store: JobStore) -> None:
    held = await cancelled_while_running(store, max_attempts=1)
    rescued = await store.rescue(Rescue(now=NOW + 31, horizon=NOW + 31))
    assert [(r.session_id, r.status) for r in rescued] == [(held.session_id, JobStatus.FAILED)]
    await assert_ended_cancelled(store, held, NOW + 31)


async def test_recovery_after_a_crash_never_requeues_a_cancelled_running_job(
    store: JobStore,
) -> None:
    held = await cancelled_while_running(store)
    await store.launch([plain := new_job()])
    await claim_one(store)
    # SQLite ends it at startup; PostgreSQL recovers nothing (other nodes may be alive) and
    # leaves both jobs to their leases, which the rescue below finds expired.
    recovered = await store.recover(NOW + 5, [JobType.EMAIL])
    job = await store.get(held.session_id)
    assert job is not None and job.status is not JobStatus.PENDING
    if recovered:
        assert {(r.session_id, r.status) for r in recovered} == {
            (held.session_id, JobStatus.FAILED),
            (plain.session_id, JobStatus.PENDING),
        }
    await store.rescue(Rescue(now=NOW + 31, horizon=NOW + 31))
    assert (await claim_one(store, now=NOW + 31)).session_id == plain.session_id
    await assert_ended_cancelled(store, held, NOW + 5 if recovered else NOW + 31)


async def test_recover_leaves_jobs_held_by_outside_workers_to_their_lease(store: JobStore) -> None:
    await store.launch([new_job(job_type=JobType.REGISTRY)])
    outside = await claim_one(store, job_type=JobType.REGISTRY)
    # Only EMAIL ran inside the dead process; REGISTRY's worker may still be alive.
    assert await store.recover(NOW + 1, [JobType.EMAIL]) == []
    job = await store.get(outside.session_id)
    assert job is not None and (job.status, job.attempt) == (JobStatus.DEQUEUED, 1)
    assert await store.count_suspects() == 0


async def test_every_attempt_is_kept_with_its_times_worker_and_outcome(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    await store.open()
    job = new_job()
    await store.launch([job])
    first = await claim_one(store, now=NOW + 1)
    assert await store.start(Lease(job.session_id, first.attempt), "running", NOW + 2)
    retry = Requeue(
        session_id=job.session_id,
        attempt=1,
        info="Attempt 1 failed",
        run_after=NOW + 13,
        now=NOW + 3,
    )
    assert await store.requeue(retry) is JobStatus.PENDING
    second = await claim_one(store, now=NOW + 20)
    assert await store.start(Lease(job.session_id, second.attempt), "running", NOW + 21)
    shutdown = Requeue(
        session_id=job.session_id,
        attempt=2,
        info="shut down",
        run_after=NOW + 22,
        refund=True,
        now=NOW + 22,
    )
    assert await store.requeue(shutdown) is JobStatus.PENDING
    # the refunded number again; times are kept to the millisecond, as the job's own are
    handed_back = await claim_one(store, now=NOW + 25.0004)
    worker_left = Requeue(
        session_id=job.session_id,
        attempt=handed_back.attempt,
        info=WORKER_LEFT,
        run_after=NOW + 26,
        refund=True,
        now=NOW + 26,
    )
    assert await store.requeue(worker_left) is JobStatus.PENDING
    third = await claim_one(store, now=NOW + 30)  # the refunded attempt number again
    await store.rescue(
        Rescue(now=NOW + 100, horizon=NOW + 100, backoff=Backoff(base_s=5, max_s=5))
    )  # lease lost
    fourth = await claim_one(store, now=NOW + 200)
    assert await store.finish(finish(fourth, now=NOW + 205))
    await store.close()

    reopened = make_store()  # the history survives a restart
    await reopened.open()
    got = await reopened.attempts(job.session_id)
    await reopened.close()
    rows = [
        (a.attempt, a.worker_id, a.claimed_at, a.started_at, a.ended_at, a.outcome, a.retry_at)
        for a in got
    ]
    assert rows == [
        (1, "w1", NOW + 1, NOW + 2, None, "retrying", NOW + 13),
        (2, "w1", NOW + 20, NOW + 21, NOW + 22, "requeued_at_shutdown", NOW + 22),
        (2, "w1", NOW + 25, None, NOW + 26, "returned", NOW + 26),
        (third.attempt, "w1", NOW + 30, None, NOW + 60, "lease_lost", NOW + 105),
        (fourth.attempt, "w1", NOW + 200, None, NOW + 205, "succeeded", None),
    ]
    assert got[0].info == "Attempt 1 failed"


async def test_a_cancelled_attempt_says_so_and_a_pruned_job_takes_its_history(
    store: JobStore,
) -> None:
    job = new_job()
    await store.launch([job])
    await claim_one(store)
    await store.cancel(job.session_id, "Cancelled by carol.", NOW + 3)
    [attempt] = await store.attempts(job.session_id)
    assert (attempt.outcome, attempt.ended_at) == ("cancelled", NOW + 3)
    await store.prune(Prune(before=NOW + 10, limit=10))
    assert await store.attempts(job.session_id) == []


async def test_cancel_ends_a_waiting_job_and_leaves_a_finished_one(store: JobStore) -> None:
    waiting = new_job()
    await store.launch([waiting])
    outcome = await store.cancel(waiting.session_id, "Cancelled by alice.", NOW + 1)
    assert (outcome.status, outcome.ended) == (JobStatus.PENDING, True)
    job = await store.get(waiting.session_id)
    assert job is not None and (job.status, job.info) == (JobStatus.FAILED, "Cancelled by alice.")
    assert job.finished_timestamp == NOW + 1
    again = await store.cancel(waiting.session_id, "again", NOW + 2)
    assert (again.status, again.ended) == (JobStatus.FAILED, False)
    assert await store.get(waiting.session_id) == job
    unknown = await store.cancel("no-such-job", "x", NOW)
    assert (unknown.status, unknown.ended) == (None, False)


def to_ms(at: float) -> float:
    """`at` as the history keeps it: to the millisecond."""
    return round(at, 3)


def down_to_ms(at: float) -> float:
    """A time a job may run from (`run_after`, the history's `retry_at`): down to the
    millisecond, never later than asked."""
    return math.floor(at * 1000) / 1000


async def test_every_attempt_time_is_kept_to_the_millisecond(store: JobStore) -> None:
    # Times with every digit a real clock gives, as jobd's pools pass them in: the history
    # keeps each to the millisecond, as the job's own started and finished times are.
    at = NOW + 0.1234567
    job = new_job()
    await store.launch([job])
    first = await claim_one(store, now=at + 1)  # leased until at + 31
    retry = Requeue(
        session_id=job.session_id,
        attempt=first.attempt,
        info="busy",
        run_after=at + 13.3217,
        now=at,
    )
    assert await store.requeue(retry) is JobStatus.PENDING
    second = await claim_one(store, now=at + 20)
    # The newcomer's ended_at, 1796167072.6758838: its millisecond rounds up, yet the job
    # handed back at that instant may be claimed at that very instant.
    shutdown = NOW + 22.6758838
    requeued = Requeue(
        session_id=job.session_id,
        attempt=second.attempt,
        info="jobd shut down",
        run_after=shutdown,
        refund=True,
        now=shutdown,
    )
    assert await store.requeue(requeued) is JobStatus.PENDING
    third = await claim_one(store, now=shutdown)
    expires = at + 60.9876543
    assert await store.extend_leases([Lease(job.session_id, third.attempt)], expires) == 1
    rescue_at = at + 100.0004321
    await store.rescue(
        Rescue(now=rescue_at, horizon=rescue_at, backoff=Backoff(base_s=0.3, max_s=5))
    )

    got = [
        (a.claimed_at, a.ended_at, a.outcome, a.retry_at)
        for a in await store.attempts(job.session_id)
    ]
    assert got == [
        (to_ms(at + 1), None, "retrying", down_to_ms(at + 13.3217)),
        (to_ms(at + 20), down_to_ms(shutdown), "requeued_at_shutdown", down_to_ms(shutdown)),
        (to_ms(shutdown), to_ms(expires), "lease_lost", down_to_ms(rescue_at + 0.3 * 2)),
    ]
