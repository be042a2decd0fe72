"""Starting a claimed job without waiting for a commit (`JobStore.start_at_once`).

SQLite has one writer in one process, so it can vouch for a start when nothing but routine
writes (launches, claims, holders' own writes) was submitted since the job's claim; the job is
then started before any later write touches it. PostgreSQL never can: another node may have
cancelled or rescued the job meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import msgspec
import pytest

from provena_jobd.config import PoolSettings
from provena_jobd.errors import StorageError
from provena_jobd.flow_control import flow_claim
from provena_jobd.models import INFO_IN_PROGRESS, JobStatus, JobType
from provena_jobd.queue.sqlite import SqliteStore
from provena_jobd.queue.store import (
    Claim,
    ClaimedJob,
    Finish,
    JobStore,
    Lease,
    NewRecord,
    Requeue,
)

from .contract_helpers import NOW, claim_one, finish, new_job


async def flow_claim_one(store: JobStore) -> ClaimedJob:
    """Claim one EMAIL job as a pool does."""
    claim = Claim(
        job_type=JobType.EMAIL, limit=1, worker_id="w1", now=NOW, lease_expires_at=NOW + 30
    )
    claimed = await store.claim_flow(flow_claim(claim, PoolSettings()))
    assert len(claimed.jobs) == 1
    return claimed.jobs[0]


async def status_of(store: JobStore, session_id: str) -> JobStatus:
    await store.idle()
    job = await store.get(session_id)
    assert job is not None
    return job.status


async def test_a_job_claimed_without_a_mark_is_never_started_at_once(store: JobStore) -> None:
    await store.launch([new_job()])
    job = await claim_one(store)  # a plain `claim` carries no mark
    assert not store.start_at_once(job, INFO_IN_PROGRESS, NOW)
    assert await status_of(store, job.session_id) is JobStatus.DEQUEUED


async def test_only_sqlite_starts_a_pools_claim_at_once(store: JobStore) -> None:
    await store.launch([new_job()])
    job = await flow_claim_one(store)
    started = store.start_at_once(job, INFO_IN_PROGRESS, NOW + 1)
    assert started is isinstance(store, SqliteStore)
    expected = JobStatus.IN_PROGRESS if started else JobStatus.DEQUEUED
    assert await status_of(store, job.session_id) is expected


async def test_a_start_at_once_and_its_finish_commit_together_with_the_whole_history(
    sqlite_store: SqliteStore,
) -> None:
    await sqlite_store.launch([new_job()])
    job = await flow_claim_one(sqlite_store)
    assert sqlite_store.start_at_once(job, INFO_IN_PROGRESS, NOW + 1)
    # Submitted right after the start, before any commit: the start is applied first.
    assert await sqlite_store.finish(finish(job, now=NOW + 2))
    ended = await sqlite_store.get(job.session_id)
    assert ended is not None and ended.status is JobStatus.SUCCEEDED
    assert ended.started_timestamp == NOW + 1
    [attempt] = await sqlite_store.attempts(job.session_id)
    assert (attempt.started_at, attempt.ended_at, attempt.outcome) == (
        NOW + 1,
        NOW + 2,
        "succeeded",
    )


async def test_a_cancel_submitted_after_the_claim_makes_the_start_wait(
    sqlite_store: SqliteStore,
) -> None:
    await sqlite_store.launch([new_job()])
    job = await flow_claim_one(sqlite_store)
    cancelling = asyncio.ensure_future(
        sqlite_store.cancel(job.session_id, "Cancelled by bob.", NOW)
    )
    await asyncio.sleep(0)  # the cancel is submitted, not yet committed
    # It may not have reached the database yet: the store cannot vouch for a start any more.
    assert not sqlite_store.start_at_once(job, INFO_IN_PROGRESS, NOW + 1)
    outcome = await cancelling
    assert outcome.ended and await status_of(sqlite_store, job.session_id) is JobStatus.FAILED
    assert not await sqlite_store.start(
        Lease(job.session_id, job.attempt), INFO_IN_PROGRESS, NOW + 1
    )  # never starts


async def test_a_cancel_submitted_after_a_start_at_once_finds_the_job_running(
    sqlite_store: SqliteStore,
) -> None:
    await sqlite_store.launch([new_job()])
    job = await flow_claim_one(sqlite_store)
    assert sqlite_store.start_at_once(job, INFO_IN_PROGRESS, NOW + 1)
    outcome = await sqlite_store.cancel(job.session_id, "Cancelled by bob.", NOW + 2)
    # Not ended as if it were waiting: its runner is told, and it ends FAILED, cancelled.
    assert (outcome.status, outcome.ended) == (JobStatus.IN_PROGRESS, False)
    assert not await sqlite_store.finish(finish(job, now=NOW + 3))


async def test_writes_of_one_job_and_of_many_store_the_same_types(
    sqlite_store: SqliteStore, tmp_path: Path
) -> None:
    """Many launches, starts and finishes go in one JSON-fed statement, one alone does not:
    both must store every column with the same type (bytes as BLOB, times as REAL)."""
    alone, together = [new_job()], [new_job() for _ in range(3)]
    await sqlite_store.launch(alone)
    await sqlite_store.launch(together)
    claimed = await sqlite_store.claim(
        Claim(job_type=JobType.EMAIL, limit=4, worker_id="w", now=NOW, lease_expires_at=NOW + 30)
    )
    first, *rest = claimed
    assert await sqlite_store.start(Lease(first.session_id, first.attempt), "x", NOW + 0.5)
    await asyncio.gather(
        *(sqlite_store.start(Lease(j.session_id, j.attempt), "x", NOW + 0.5) for j in rest)
    )
    assert await sqlite_store.finish(finish(first, now=NOW + 1.25))
    await asyncio.gather(*(sqlite_store.finish(finish(j, now=NOW + 1.25)) for j in rest))
    await sqlite_store.idle()
    columns = (
        "session_id created_timestamp username payload result run_after max_attempts "
        "started_timestamp finished_timestamp status info"
    )
    kinds = ", ".join(f"typeof({c})" for c in columns.split())
    with sqlite3.connect(tmp_path / "jobd.db") as reader:
        rows = reader.execute(f"SELECT {kinds}, payload, result FROM jobs ORDER BY seq").fetchall()
    assert len(rows) == 4 and len({row[:-2] for row in rows}) == 1, rows
    assert rows[0][:11] == (
        "text",
        "integer",
        "text",
        "blob",
        "blob",
        "real",
        "integer",
        "real",
        "real",
        "text",
        "null",
    )
    stored = {bytes(row[-2]) for row in rows}
    assert stored == {job.payload for job in alone + together} and {bytes(r[-1]) for r in rows} == {
        b"{}"
    }


async def test_a_nul_character_survives_writes_of_many_jobs(
    sqlite_store: SqliteStore,
) -> None:
    """SQLite's JSON functions cut a text at a NUL: such rows take the row-by-row path."""
    jobs = [new_job(username="bob\x00tail") for _ in range(3)]
    await sqlite_store.launch(jobs)
    claimed = await sqlite_store.claim(
        Claim(job_type=JobType.EMAIL, limit=3, worker_id="w", now=NOW, lease_expires_at=NOW + 30)
    )
    failed = [
        msgspec.structs.replace(finish(job, JobStatus.FAILED), info=f"bad \x00 byte {n}")
        for n, job in enumerate(claimed)
    ]
    assert await asyncio.gather(*(sqlite_store.finish(f) for f in failed)) == [True] * 3
    for n, job in enumerate(claimed):
        stored = await sqlite_store.get(job.session_id)
        assert stored is not None
        assert (stored.username, stored.info) == ("bob\x00tail", f"bad \x00 byte {n}")


async def test_in_one_batch_a_finish_goes_before_a_requeue_of_the_same_job(
    sqlite_store: SqliteStore,
) -> None:
    """A shutdown requeues what it cancelled; a finish already queued for that job wins."""
    await sqlite_store.launch([new_job(), new_job()])
    other, job = await sqlite_store.claim(
        Claim(job_type=JobType.EMAIL, limit=2, worker_id="w", now=NOW, lease_expires_at=NOW + 30)
    )

    def requeue(held: ClaimedJob) -> Requeue:
        return Requeue(
            session_id=held.session_id,
            attempt=held.attempt,
            info="back",
            run_after=NOW,
            now=NOW,
            refund=True,
        )

    outcomes = await asyncio.gather(
        sqlite_store.requeue(requeue(other)),
        sqlite_store.finish(finish(job, now=NOW + 1)),
        sqlite_store.requeue(requeue(job)),
    )
    assert list(outcomes) == [JobStatus.PENDING, True, None]
    ended = await sqlite_store.get(job.session_id)
    assert ended is not None and ended.status is JobStatus.SUCCEEDED


async def test_reading_a_secret_again_does_not_make_starts_wait(sqlite_store: SqliteStore) -> None:
    """Report links read a secret on every download; only its first read is a write."""
    first = await sqlite_store.secret("reports")
    await sqlite_store.launch([new_job()])
    job = await flow_claim_one(sqlite_store)
    assert await sqlite_store.secret("reports") == first
    assert sqlite_store.start_at_once(job, INFO_IN_PROGRESS, NOW + 1)


# -- a start folded into its finish (sqlite_fold.py) ------------------------------------------


async def test_a_cancel_between_a_start_and_its_finish_in_one_batch_finds_the_job_running(
    sqlite_store: SqliteStore,
) -> None:
    """The finish may not carry its start past a cancel submitted in between: the cancel
    must find the job running (and the job end cancelled), as without folding."""
    await sqlite_store.launch([new_job()])
    job = await flow_claim_one(sqlite_store)
    assert sqlite_store.start_at_once(job, INFO_IN_PROGRESS, NOW + 1)
    outcome, finished = await asyncio.gather(
        sqlite_store.cancel(job.session_id, "Cancelled by bob.", NOW + 2),
        sqlite_store.finish(finish(job, now=NOW + 3)),
    )
    assert (outcome.status, outcome.ended) == (JobStatus.IN_PROGRESS, False)
    assert not finished  # a cancelled job never succeeds
    stored = await sqlite_store.get(job.session_id)
    assert stored is not None and stored.started_timestamp == NOW + 1


async def test_a_progress_report_between_a_start_and_its_finish_is_shown(
    sqlite_store: SqliteStore,
) -> None:
    """Progress needs the job IN_PROGRESS: its start is then written apart, before it."""
    await sqlite_store.launch([new_job()])
    job = await flow_claim_one(sqlite_store)
    assert sqlite_store.start_at_once(job, INFO_IN_PROGRESS, NOW + 1)
    shown, finished = await asyncio.gather(
        sqlite_store.progress(Lease(job.session_id, job.attempt), "half way", 0.5),
        sqlite_store.finish(finish(job, now=NOW + 2)),
    )
    assert shown and finished
    [attempt] = await sqlite_store.attempts(job.session_id)
    assert (attempt.started_at, attempt.outcome) == (NOW + 1, "succeeded")


async def test_a_folded_finish_that_is_refused_is_written_apart(
    sqlite_store: SqliteStore, tmp_path: Path
) -> None:
    """Whatever refuses the one UPDATE of a folded start and finish, the two are then tried
    apart: the start applies, and the finish is judged on its own (here: a job flagged as
    cancelled never succeeds; a cancel always comes through the writer, so this flag is set
    by hand)."""
    await sqlite_store.launch([new_job()])
    job = await flow_claim_one(sqlite_store)
    await sqlite_store.idle()
    with sqlite3.connect(tmp_path / "jobd.db") as other:
        other.execute(
            "UPDATE jobs SET cancel_requested_by = 'Cancelled by bob.' WHERE session_id = ?",
            (job.session_id,),
        )
    assert sqlite_store.start_at_once(job, INFO_IN_PROGRESS, NOW + 1)
    assert not await sqlite_store.finish(finish(job, now=NOW + 2))
    stored = await sqlite_store.get(job.session_id)
    assert stored is not None
    assert (stored.status, stored.started_timestamp) == (JobStatus.IN_PROGRESS, NOW + 1)


async def _flow_claim(store: SqliteStore, count: int) -> list[ClaimedJob]:
    """Claim `count` EMAIL jobs as a pool does."""
    claim = Claim(
        job_type=JobType.EMAIL, limit=count, worker_id="w1", now=NOW, lease_expires_at=NOW + 30
    )
    claimed = await store.claim_flow(flow_claim(claim, PoolSettings()))
    assert len(claimed.jobs) == count
    return claimed.jobs


def _with_record(job: ClaimedJob, record_id: str, now: float) -> Finish:
    """A success that stores a record under `record_id` (an id already stored fails it)."""
    record = NewRecord(
        record_id=record_id, kind="K", session_id=job.session_id, username="alice", data={},
        created=now,
    )  # fmt: skip
    return msgspec.structs.replace(finish(job, now=now), records=[record])


async def test_a_folded_finish_that_fails_leaves_its_job_started(
    sqlite_store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A finish that cannot be written fails its batch; the writer then applies each write
    alone. The start it was to write goes in on its own: the job is left IN_PROGRESS with its
    start in the history, as without folding, until its lease runs out."""
    await sqlite_store.launch([new_job(), new_job()])
    first, job = await _flow_claim(sqlite_store, 2)
    assert await sqlite_store.finish(_with_record(first, "taken", NOW))
    assert sqlite_store.start_at_once(job, INFO_IN_PROGRESS, NOW + 1)
    with caplog.at_level(logging.WARNING), pytest.raises(StorageError):
        await sqlite_store.finish(_with_record(job, "taken", NOW + 2))
    assert "group commit failed" in caplog.text
    stored = await sqlite_store.get(job.session_id)
    assert stored is not None
    assert (stored.status, stored.started_timestamp) == (JobStatus.IN_PROGRESS, NOW + 1)
    [attempt] = await sqlite_store.attempts(job.session_id)
    assert attempt.started_at == NOW + 1


async def test_many_folded_finishes_are_written_in_one_statement_each_with_its_times(
    sqlite_store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch of folded finishes, successes and failures, goes in one statement (no group
    commit that failed, no savepoint rolled back to try row by row), and every job gets its
    own start and end, in the row and in the history."""
    await sqlite_store.launch([new_job() for _ in range(4)])
    jobs = await _flow_claim(sqlite_store, 4)
    statements: list[str] = []
    await sqlite_store._writer.call(lambda c: c.set_trace_callback(statements.append))
    for n, job in enumerate(jobs):
        assert sqlite_store.start_at_once(job, INFO_IN_PROGRESS, NOW + 1 + n / 1000)
    ends = [
        finish(job, JobStatus.SUCCEEDED if n % 2 == 0 else JobStatus.FAILED, now=NOW + 5 + n)
        for n, job in enumerate(jobs)
    ]
    with caplog.at_level(logging.WARNING):
        assert await asyncio.gather(*(sqlite_store.finish(end) for end in ends)) == [True] * 4
    assert "group commit failed" not in caplog.text
    assert not [s for s in statements if s.startswith("ROLLBACK")]
    # (SQLite traces the statement again as each of its triggers starts.)
    [update] = {s for s in statements if s.startswith("UPDATE jobs")}
    assert "json_each" in update
    for n, job in enumerate(jobs):
        stored = await sqlite_store.get(job.session_id)
        assert stored is not None
        assert (stored.status, stored.started_timestamp, stored.finished_timestamp) == (
            ends[n].status,
            NOW + 1 + n / 1000,
            NOW + 5 + n,
        )
        [attempt] = await sqlite_store.attempts(job.session_id)
        assert (attempt.started_at, attempt.ended_at, attempt.outcome) == (
            NOW + 1 + n / 1000,
            NOW + 5 + n,
            "succeeded" if n % 2 == 0 else "failed",
        )
