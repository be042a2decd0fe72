"""Crash isolation is SQLite-only: one process owns the database, so at startup everything
held was held by the process that died (on PostgreSQL, other live nodes may hold jobs)."""

from __future__ import annotations

import pytest

from provena_jobd.models import JobStatus, JobType
from provena_jobd.queue.sqlite import SqliteStore
from provena_jobd.queue.store import Claim, JobStore, Lease

from .contract_helpers import NOW, claim_one, finish, new_job


@pytest.fixture
def store(sqlite_store: SqliteStore) -> JobStore:
    """These cases are SQLite's alone (see the module docstring)."""
    return sqlite_store


async def test_recover_refunds_jobs_held_together_and_charges_a_suspect_that_ran_alone(
    store: JobStore,
) -> None:
    await store.launch([new_job(), new_job()])
    together = [await claim_one(store), await claim_one(store)]
    recovered = await store.recover(NOW + 1, [JobType.EMAIL])
    assert {r.status for r in recovered} == {JobStatus.PENDING}
    assert await store.count_suspects() == 2
    for held in together:
        job = await store.get(held.session_id)
        assert job is not None and (job.status, job.attempt) == (JobStatus.PENDING, 0)
    # Suspects run alone, oldest first; the pools' claim does not matter here.
    alone = await store.claim_suspect(
        Claim(job_type="*", limit=1, worker_id="isolation", now=NOW + 2, lease_expires_at=NOW + 32)
    )
    assert alone is not None and alone.session_id == together[0].session_id
    assert alone.attempt == 1
    # jobd died again while it ran alone: charged, still a suspect.
    await store.recover(NOW + 3, [JobType.EMAIL])
    job = await store.get(alone.session_id)
    assert job is not None and (job.status, job.attempt) == (JobStatus.PENDING, 1)
    assert job.info is not None and "ran alone (attempt 1 counted)" in job.info
    # It is still the oldest suspect: it runs alone again, succeeds and is cleared.
    again = await store.claim_suspect(
        Claim(job_type="*", limit=1, worker_id="isolation", now=NOW + 4, lease_expires_at=NOW + 34)
    )
    assert again is not None and (again.session_id, again.attempt) == (alone.session_id, 2)
    assert await store.finish(finish(again, now=NOW + 5))
    await store.clear_suspect(again.session_id)
    assert await store.count_suspects() == 1  # the other one still waits to run alone


async def test_recover_leaves_jobs_held_by_outside_workers_to_their_lease(store: JobStore) -> None:
    await store.launch([new_job(job_type=JobType.REGISTRY)])
    outside = await claim_one(store, job_type=JobType.REGISTRY)
    # Only EMAIL ran inside the dead process; REGISTRY's worker may still be alive.
    assert await store.recover(NOW + 1, [JobType.EMAIL]) == []
    job = await store.get(outside.session_id)
    assert job is not None and (job.status, job.attempt) == (JobStatus.DEQUEUED, 1)
    assert await store.count_suspects() == 0


async def test_a_suspect_cancelled_while_it_ran_alone_ends_at_the_next_recovery(
    store: JobStore,
) -> None:
    await store.launch([new_job()])
    await claim_one(store)
    [recovered] = await store.recover(NOW + 1, [JobType.EMAIL])
    alone = await store.claim_suspect(
        Claim(job_type="*", limit=1, worker_id="isolation", now=NOW + 2, lease_expires_at=NOW + 32)
    )
    assert alone is not None and alone.session_id == recovered.session_id
    assert await store.start(Lease(alone.session_id, alone.attempt), "running", NOW + 3)
    await store.cancel(alone.session_id, "Cancelled by carol.", NOW + 4)
    # jobd died again while it ran alone: not requeued to run alone again, but ended.
    [ended] = await store.recover(NOW + 5, [JobType.EMAIL])
    assert (ended.session_id, ended.status) == (alone.session_id, JobStatus.FAILED)
    job = await store.get(alone.session_id)
    assert job is not None and (job.status, job.finished_timestamp) == (JobStatus.FAILED, NOW + 5)
    assert job.info == (
        "Cancelled by carol. It was running; anything it had launched was discarded."
    )
    claim = Claim(job_type="*", limit=1, worker_id="isolation", now=NOW + 6, lease_expires_at=NOW)
    assert await store.claim_suspect(claim) is None
    assert await store.count_suspects() == 0


async def test_a_crash_suspect_s_times_are_kept_to_the_millisecond(store: JobStore) -> None:
    await store.launch([new_job()])
    held = await claim_one(store, now=NOW + 1.0004321)
    await store.recover(NOW + 2.6758838, [JobType.EMAIL])  # as jobd restarts after a crash
    alone = await store.claim_suspect(
        Claim(
            job_type="*",
            limit=1,
            worker_id="isolation",
            now=NOW + 3,
            lease_expires_at=NOW + 63.9876543,
        )
    )
    assert alone is not None
    await store.recover(NOW + 9.1234567, [JobType.EMAIL])  # it crashed jobd again, alone
    first, again = await store.attempts(held.session_id)
    assert (first.claimed_at, first.outcome, first.retry_at) == (
        NOW + 1,
        "crash_suspect",
        NOW + 2.675,  # a time it may run from: down to the millisecond, never later
    )
    assert (again.claimed_at, again.outcome, again.retry_at) == (
        NOW + 3,
        "retrying",
        NOW + 9.123,
    )
