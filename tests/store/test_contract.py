"""The store contract: what every backend must do. Runs against real databases only."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from provena_jobd.models import JobStatus, JobSubType, JobType
from provena_jobd.queue.postgres import PostgresStore
from provena_jobd.queue.sqlite import SqliteStore
from provena_jobd.queue.store import (
    Backoff,
    Claim,
    ClaimedJob,
    Finish,
    FlowClaim,
    InvalidPosition,
    JobStore,
    KeyedLaunch,
    LastFire,
    LaunchKey,
    Lease,
    ListScope,
    NewJob,
    NewRecord,
    Pause,
    Position,
    Prune,
    Requeue,
    Rescue,
    ScheduleFire,
    StartLimits,
)
from tests.helpers import eventually
from tests.postgres import empty

NOW = 1_800_000_000.0
StoreFactory = Callable[[], JobStore]


@pytest.fixture(params=["sqlite", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """A factory of stores on one database, so a test can close and reopen it."""
    if request.param == "sqlite":
        return lambda: SqliteStore(tmp_path / "jobd.db")
    url: str = request.getfixturevalue("postgres_database")
    empty(url)
    return lambda: PostgresStore(url)


@pytest.fixture
async def store(make_store: StoreFactory) -> AsyncIterator[JobStore]:
    opened = make_store()
    await opened.open()
    yield opened
    await opened.close()


_counter = itertools.count()


def new_job(
    username: str = "alice",
    job_type: JobType = JobType.EMAIL,
    batch_id: str | None = None,
    new_batch: bool = False,
    created: int = int(NOW),
    max_attempts: int = 3,
    run_after: float = NOW,
) -> NewJob:
    sub_type = {
        JobType.EMAIL: JobSubType.SEND_EMAIL,
        JobType.REGISTRY: JobSubType.REGISTER_CREATE_ACTIVITY,
        JobType.PROV_LODGE: JobSubType.MODEL_RUN_PROV_LODGE,
        JobType.REPORT: JobSubType.GENERATE_REPORT,
    }[job_type]
    return NewJob(
        session_id=str(uuid.uuid4()),
        created_timestamp=created,
        username=username,
        batch_id=batch_id,
        new_batch=new_batch,
        job_type=job_type,
        job_sub_type=sub_type,
        payload=b'{"n": %d}' % next(_counter),
        max_attempts=max_attempts,
        run_after=run_after,
    )


async def claim_one(
    store: JobStore, job_type: JobType = JobType.EMAIL, now: float = NOW
) -> ClaimedJob:
    claimed = await store.claim(
        Claim(job_type=job_type, limit=1, worker_id="w1", now=now, lease_expires_at=now + 30)
    )
    assert len(claimed) == 1
    return claimed[0]


def finish(job: ClaimedJob, status: JobStatus = JobStatus.SUCCEEDED, now: float = NOW) -> Finish:
    result = b"{}" if status is JobStatus.SUCCEEDED else None
    info = None if status is JobStatus.SUCCEEDED else "boom"
    return Finish(
        session_id=job.session_id,
        attempt=job.attempt,
        status=status,
        info=info,
        result=result,
        now=now,
    )


# -- launching and reading ------------------------------------------------------------------


async def test_a_launched_job_is_pending_with_every_field(store: JobStore) -> None:
    job = new_job()
    await store.launch([job])
    stored = await store.get(job.session_id)
    assert stored is not None
    assert stored.status is JobStatus.PENDING
    assert (stored.username, stored.batch_id, stored.job_type) == ("alice", None, JobType.EMAIL)
    assert bytes(stored.payload) == job.payload
    assert stored.info is None and bytes(stored.result) == b"null"
    assert stored.attempt == 0 and stored.started_timestamp is None


async def test_unknown_jobs_and_batches_are_none(store: JobStore) -> None:
    assert await store.get("no-such-job") is None
    assert await store.batch_owner("no-such-batch") is None


async def test_a_new_batch_records_its_owner(store: JobStore) -> None:
    batch_id = str(uuid.uuid4())
    await store.launch([new_job(username="bob", batch_id=batch_id, new_batch=True)])
    assert await store.batch_owner(batch_id) == "bob"


async def test_acknowledged_launches_survive_a_reopen(make_store: StoreFactory) -> None:
    first = make_store()
    await first.open()
    jobs = [new_job() for _ in range(50)]
    for job in jobs:
        await first.launch([job])
    await first.close()
    second = make_store()
    await second.open()
    try:
        for job in jobs:
            assert await second.get(job.session_id) is not None
    finally:
        await second.close()


# -- lists ----------------------------------------------------------------------------------


async def walk(store: JobStore, scope: ListScope, limit: int) -> list[list[str]]:
    pages, after = [], None
    while True:
        page = await store.list_jobs(scope, limit, after)
        pages.append([job.session_id for job in page.jobs])
        if not page.more:
            return pages
        last = page.jobs[-1]
        after = Position(last.session_id, last.created_timestamp)


async def test_walking_a_list_yields_every_job_once_newest_first(store: JobStore) -> None:
    # Several jobs per second, so ties on created_timestamp must be broken by launch order.
    jobs = [new_job(created=int(NOW) + i // 4) for i in range(23)]
    for job in jobs:
        await store.launch([job])
    await store.launch([new_job(username="bob")])
    pages = await walk(store, ListScope(username="alice"), limit=5)
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    assert [s for page in pages for s in page] == [j.session_id for j in reversed(jobs)]


async def test_an_exactly_full_last_page_says_there_is_no_more(store: JobStore) -> None:
    for _ in range(4):
        await store.launch([new_job()])
    pages = await walk(store, ListScope(username="alice"), limit=2)
    assert [len(p) for p in pages] == [2, 2]


async def test_lists_are_scoped_by_batch_user_or_nothing(store: JobStore) -> None:
    batch_id = str(uuid.uuid4())
    batch = [new_job(batch_id=batch_id, new_batch=i == 0) for i in range(3)]
    other = new_job(username="bob")
    await store.launch([*batch, other])
    in_batch = await store.list_jobs(ListScope(batch_id=batch_id), 10, None)
    assert {j.session_id for j in in_batch.jobs} == {j.session_id for j in batch}
    everyone = await store.list_jobs(ListScope(), 10, None)
    assert len(everyone.jobs) == 4
    bobs = await store.list_jobs(ListScope(username="bob"), 10, None)
    assert [j.session_id for j in bobs.jobs] == [other.session_id]
    none = await store.list_jobs(ListScope(batch_id=batch_id, username="bob"), 10, None)
    assert none.jobs == [] and not none.more


async def test_a_position_from_another_list_is_refused(store: JobStore) -> None:
    alices, bobs = new_job(), new_job(username="bob")
    await store.launch([alices, bobs])
    foreign = Position(bobs.session_id, bobs.created_timestamp)
    with pytest.raises(InvalidPosition):
        await store.list_jobs(ListScope(username="alice"), 10, foreign)
    with pytest.raises(InvalidPosition):
        await store.list_jobs(ListScope(), 10, Position("made-up", 1))
    tampered = Position(alices.session_id, alices.created_timestamp + 1)
    with pytest.raises(InvalidPosition):
        await store.list_jobs(ListScope(username="alice"), 10, tampered)


# -- claiming and the guarded life of a job -------------------------------------------------


async def test_claims_are_oldest_first_per_type_and_bounded(store: JobStore) -> None:
    emails = [new_job() for _ in range(5)]
    await store.launch([*emails, new_job(job_type=JobType.REGISTRY)])
    claimed = await store.claim(
        Claim(job_type=JobType.EMAIL, limit=3, worker_id="w", now=NOW, lease_expires_at=NOW + 30)
    )
    assert [c.session_id for c in claimed] == [j.session_id for j in emails[:3]]
    assert all(c.attempt == 1 for c in claimed)
    first = await store.get(claimed[0].session_id)
    assert first is not None and first.status is JobStatus.DEQUEUED
    assert first.info == "Job removed from queue ready for processing by worker task."
    rest = await store.claim(
        Claim(job_type=JobType.EMAIL, limit=10, worker_id="w", now=NOW, lease_expires_at=NOW + 30)
    )
    assert [c.session_id for c in rest] == [j.session_id for j in emails[3:]]


async def test_a_job_is_not_claimed_before_its_run_after(store: JobStore) -> None:
    await store.launch([new_job(run_after=NOW + 10)])
    assert await store.count_waiting(JobType.EMAIL, NOW, 10) == 0
    assert (
        await store.claim(
            Claim(
                job_type=JobType.EMAIL, limit=1, worker_id="w", now=NOW, lease_expires_at=NOW + 30
            )
        )
        == []
    )
    assert await store.waiting_by_type() == {JobType.EMAIL: 1}
    await claim_one(store, now=NOW + 10)


async def test_the_happy_path_and_its_timestamps(store: JobStore) -> None:
    await store.launch([new_job()])
    held = await claim_one(store)
    lease = Lease(held.session_id, held.attempt)
    assert await store.start(lease, "running", NOW + 1)
    assert await store.finish(finish(held, now=NOW + 2))
    job = await store.get(held.session_id)
    assert job is not None and job.status is JobStatus.SUCCEEDED
    assert bytes(job.result) == b"{}"
    assert (job.started_timestamp, job.finished_timestamp) == (NOW + 1, NOW + 2)


async def test_a_finished_job_never_changes_again(store: JobStore) -> None:
    await store.launch([new_job()])
    held = await claim_one(store)
    assert await store.finish(finish(held, JobStatus.FAILED))
    before = await store.get(held.session_id)
    lease = Lease(held.session_id, held.attempt)
    assert not await store.finish(finish(held, JobStatus.SUCCEEDED))
    assert not await store.start(lease, "late", NOW)
    assert (
        await store.requeue(
            Requeue(
                session_id=held.session_id, attempt=held.attempt, info=None, run_after=NOW, now=NOW
            )
        )
        is None
    )
    assert await store.extend_leases([lease], NOW + 99) == 0
    assert await store.rescue(Rescue(now=NOW + 1_000, horizon=float("inf"))) == []
    assert await store.get(held.session_id) == before


async def test_a_stale_attempt_is_fenced_out(store: JobStore) -> None:
    await store.launch([new_job()])
    first = await claim_one(store)
    rescued = await store.rescue(Rescue(now=NOW + 31, horizon=NOW + 31))
    assert [(r.status, r.worker_id) for r in rescued] == [(JobStatus.PENDING, "w1")]
    second = await claim_one(store, now=NOW + 31)
    assert second.attempt == first.attempt + 1
    # The lost worker comes back late: none of its writes may land.
    assert not await store.start(Lease(first.session_id, first.attempt), "late", NOW + 32)
    assert not await store.finish(finish(first, JobStatus.FAILED, now=NOW + 32))
    assert await store.finish(finish(second, now=NOW + 33))
    job = await store.get(first.session_id)
    assert job is not None and job.status is JobStatus.SUCCEEDED and job.attempt == 2


async def test_a_batch_of_finishes_reports_each_guard(store: JobStore) -> None:
    await store.launch([new_job() for _ in range(3)])
    held = await store.claim(
        Claim(job_type=JobType.EMAIL, limit=3, worker_id="w", now=NOW, lease_expires_at=NOW + 30)
    )
    assert await store.finish(finish(held[1]))
    stale = Finish(
        session_id=held[2].session_id,
        attempt=7,
        status=JobStatus.SUCCEEDED,
        info=None,
        result=b"{}",
        now=NOW,
    )
    outcomes = await asyncio.gather(
        store.finish(finish(held[0])), store.finish(finish(held[1])), store.finish(stale)
    )
    assert list(outcomes) == [True, False, False]
    statuses = [(await store.get(h.session_id)).status for h in held]  # type: ignore[union-attr]
    assert statuses == [JobStatus.SUCCEEDED, JobStatus.SUCCEEDED, JobStatus.DEQUEUED]


async def test_heartbeats_keep_a_lease_alive(store: JobStore) -> None:
    await store.launch([new_job()])
    held = await claim_one(store)
    assert await store.extend_leases([Lease(held.session_id, held.attempt)], NOW + 90) == 1
    assert await store.rescue(Rescue(now=NOW + 60, horizon=NOW + 60)) == []
    assert len(await store.rescue(Rescue(now=NOW + 91, horizon=NOW + 91))) == 1


async def test_rescue_requeues_with_backoff_then_fails_past_max_attempts(store: JobStore) -> None:
    await store.launch([new_job(max_attempts=2)])
    held = await claim_one(store)
    rescued = await store.rescue(
        Rescue(now=NOW + 31, horizon=NOW + 31, backoff=Backoff(base_s=5, max_s=5))
    )
    assert [(r.session_id, r.status) for r in rescued] == [(held.session_id, JobStatus.PENDING)]
    job = await store.get(held.session_id)
    assert job is not None and job.status is JobStatus.PENDING
    assert job.info is not None and "worker was lost" in job.info
    assert await store.count_waiting(JobType.EMAIL, NOW + 35, 10) == 0  # backing off 5 s
    again = await claim_one(store, now=NOW + 36)
    assert again.attempt == 2
    rescued = await store.rescue(Rescue(now=NOW + 1_000, horizon=NOW + 1_000))
    assert [r.status for r in rescued] == [JobStatus.FAILED]
    job = await store.get(held.session_id)
    assert job is not None and job.status is JobStatus.FAILED
    assert job.info is not None and "2 attempts" in job.info and bytes(job.result) == b"null"


async def test_rescue_takes_leases_expired_before_its_horizon(store: JobStore) -> None:
    await store.launch([new_job(), new_job()])
    await claim_one(store)  # its lease runs to NOW + 30
    assert await store.rescue(Rescue(now=NOW, horizon=NOW + 30)) == []
    rescued = await store.rescue(Rescue(now=NOW, horizon=NOW + 30.5))
    assert len(rescued) == 1
    assert await store.count_waiting(JobType.EMAIL, NOW, 10) == 2


async def test_a_refunded_requeue_gives_the_attempt_back(store: JobStore) -> None:
    await store.launch([new_job()])
    held = await claim_one(store)
    assert (
        await store.requeue(
            Requeue(
                session_id=held.session_id,
                attempt=held.attempt,
                info="shutdown",
                run_after=NOW,
                refund=True,
                now=NOW,
            )
        )
        is JobStatus.PENDING
    )
    job = await store.get(held.session_id)
    assert job is not None and (job.status, job.attempt) == (JobStatus.PENDING, 0)
    assert (await claim_one(store)).attempt == 1


async def test_count_waiting_stops_at_the_cap(store: JobStore) -> None:
    await store.launch([new_job() for _ in range(7)])
    assert await store.count_waiting(JobType.EMAIL, NOW, 5) == 5
    assert await store.count_waiting(JobType.EMAIL, NOW, 50) == 7
    assert await store.count_waiting(JobType.REPORT, NOW, 50) == 0


async def test_jobs_of_unknown_types_are_failed_and_finished_ones_untouched(
    store: JobStore,
) -> None:
    done, running, waiting = (new_job(job_type=JobType.REPORT) for _ in range(3))
    kept = new_job()
    await store.launch([done, running, waiting, kept])
    first = await claim_one(store, JobType.REPORT)
    assert await store.finish(finish(first))
    second = await claim_one(store, JobType.REPORT)
    assert (first.session_id, second.session_id) == (done.session_id, running.session_id)
    failed = await store.fail_unknown_types(["EMAIL"], "{job_type} is gone", NOW)
    assert set(failed) == {running.session_id, waiting.session_id}
    job = await store.get(running.session_id)
    assert job is not None and (job.status, job.info) == (JobStatus.FAILED, "REPORT is gone")
    finished = await store.get(done.session_id)
    assert finished is not None and finished.status is JobStatus.SUCCEEDED
    still = await store.get(kept.session_id)
    assert still is not None and still.status is JobStatus.PENDING
    assert await store.fail_unknown_types(["EMAIL"], "{job_type} is gone", NOW) == []


# -- retention ------------------------------------------------------------------------------

DAY = 86_400.0


async def finished_job(
    store: JobStore,
    at: float,
    status: JobStatus = JobStatus.SUCCEEDED,
    batch_id: str | None = None,
    new_batch: bool = False,
    launches: list[NewJob] | None = None,
    record_text: str | None = None,
) -> str:
    """Launch, claim and finish one job at `at`; returns its id."""
    job = new_job(batch_id=batch_id, new_batch=new_batch, created=int(at), run_after=at)
    await store.launch([job])
    claimed = await claim_one(store, now=at)
    assert claimed.session_id == job.session_id
    records = (
        [
            NewRecord(
                record_id=str(uuid.uuid4()),
                kind="registry",
                session_id=job.session_id,
                username="alice",
                data={"note": record_text},
                created=at,
            )
        ]
        if record_text
        else []
    )
    done = msgspec.structs.replace(
        finish(claimed, status, now=at), launches=launches or [], records=records
    )
    assert await store.finish(done)
    return job.session_id


async def prune_all(store: JobStore, before: float, limit: int = 100) -> int:
    """Run a whole sweep of passes; how many jobs it deleted."""
    total, after = 0, None
    while True:
        pruned = await store.prune(Prune(before=before, limit=limit, after=after))
        total += pruned.jobs
        after = pruned.after
        if after is None:
            return total


async def test_prune_deletes_old_finished_jobs_and_their_records_only(store: JobStore) -> None:
    old_ok = await finished_job(store, NOW - 40 * DAY, record_text="old-record")
    old_failed = await finished_job(store, NOW - 35 * DAY, JobStatus.FAILED)
    young = await finished_job(store, NOW - 1 * DAY, record_text="young-record")
    waiting = new_job(created=int(NOW - 50 * DAY), run_after=NOW + DAY)
    await store.launch([waiting])

    assert await prune_all(store, before=NOW - 30 * DAY) == 2

    assert await store.get(old_ok) is None and await store.get(old_failed) is None
    assert await store.records_mentioning("old-record", 10) == []
    assert await store.get(young) is not None
    assert len(await store.records_mentioning("young-record", 10)) == 1
    pending = await store.get(waiting.session_id)
    assert pending is not None and pending.status is JobStatus.PENDING


async def test_prune_takes_a_batch_whole_or_not_at_all(store: JobStore) -> None:
    batch_id = str(uuid.uuid4())
    first = await finished_job(store, NOW - 40 * DAY, batch_id=batch_id, new_batch=True)
    second = await finished_job(store, NOW - 40 * DAY, batch_id=batch_id)
    # A third job of the batch is launched later and has not run yet.
    late = new_job(batch_id=batch_id, created=int(NOW - DAY), run_after=NOW + DAY)
    await store.launch([late])

    assert await prune_all(store, before=NOW - 30 * DAY, limit=1) == 0
    assert await store.get(first) is not None and await store.get(second) is not None

    claimed = await claim_one(store, now=NOW + DAY)
    assert await store.finish(finish(claimed, now=NOW + DAY))
    # Still too young: the batch stays whole.
    assert await prune_all(store, before=NOW) == 0
    assert await prune_all(store, before=NOW + 2 * DAY) == 3
    assert await store.batch_owner(batch_id) is None


async def test_prune_takes_a_workflow_only_when_every_step_finished(store: JobStore) -> None:
    parent_id = str(uuid.uuid4())
    child = msgspec.structs.replace(
        new_job(created=int(NOW - 40 * DAY), run_after=NOW + DAY), parent_session_id=parent_id
    )
    parent = msgspec.structs.replace(
        new_job(created=int(NOW - 40 * DAY), run_after=NOW - 40 * DAY), session_id=parent_id
    )
    await store.launch([parent])
    claimed = await claim_one(store, now=NOW - 40 * DAY)
    done = msgspec.structs.replace(finish(claimed, now=NOW - 40 * DAY), launches=[child])
    assert await store.finish(done)

    assert await prune_all(store, before=NOW - 30 * DAY) == 0  # the child is still waiting
    assert await store.get(parent_id) is not None

    step = await claim_one(store, now=NOW + DAY)
    assert await store.finish(finish(step, now=NOW + DAY))
    assert await prune_all(store, before=NOW + 2 * DAY) == 2
    assert await store.get(parent_id) is None and await store.get(child.session_id) is None


async def test_a_held_back_batch_does_not_stall_the_sweep(store: JobStore) -> None:
    batch_id = str(uuid.uuid4())
    for _ in range(5):  # the oldest finished jobs belong to a batch that is not finished
        await finished_job(store, NOW - 50 * DAY, batch_id=batch_id, new_batch=_ == 0)
    await store.launch([new_job(batch_id=batch_id, run_after=NOW + DAY)])
    newer = [await finished_job(store, NOW - 40 * DAY) for _ in range(5)]

    # Passes of two: the first ones see only the held-back batch, yet the sweep goes on.
    assert await prune_all(store, before=NOW - 30 * DAY, limit=2) == 5
    assert all([await store.get(job) is None for job in newer])
    assert await store.batch_owner(batch_id) == "alice"


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


async def test_list_filters_search_and_batches_as_one_entry(store: JobStore) -> None:
    batch = str(uuid.uuid4())
    plain = new_job()
    report = new_job(job_type=JobType.REPORT)
    first = new_job(batch_id=batch, new_batch=True, created=int(NOW) + 1)
    member = new_job(batch_id=batch, created=int(NOW) + 2)
    await store.launch([plain, report, first, member])
    await store.cancel(first.session_id, "Stopped by Carol", NOW)

    async def listed(**filters: Any) -> list[str]:
        page = await store.list_jobs(ListScope(username="alice", **filters), 10, None)
        return [job.session_id for job in page.jobs]

    assert await listed(status=JobStatus.FAILED) == [first.session_id]
    assert await listed(job_type="REPORT") == [report.session_id]
    assert await listed(job_sub_type="SEND_EMAIL", status=JobStatus.PENDING) == [
        member.session_id,
        plain.session_id,
    ]
    assert await listed(search="CAROL") == [first.session_id]  # info, any case
    assert await listed(search=plain.session_id[4:12]) == [plain.session_id]
    n = msgspec.json.decode(report.payload)["n"]
    assert await listed(search=f'"n": {n}') == [report.session_id]  # payload text
    assert await listed(group_batches=True) == [
        member.session_id,
        report.session_id,
        plain.session_id,
    ]
    # Grouped and filtered: the batch stands at its newest job the filters keep.
    assert await listed(group_batches=True, status=JobStatus.FAILED) == [first.session_id]
    grouped = ListScope(username="alice", group_batches=True)
    page = await store.list_jobs(grouped, 1, None)
    rest = await store.list_jobs(grouped, 10, Position(member.session_id, member.created_timestamp))
    assert [job.session_id for job in rest.jobs] == [report.session_id, plain.session_id]
    assert page.more and not rest.more


async def test_queue_place_counts_the_jobs_of_its_type_ahead(store: JobStore) -> None:
    first, second, later = new_job(), new_job(), new_job()
    backing_off = new_job(run_after=NOW + 60)
    other_type = new_job(job_type=JobType.REPORT)
    await store.launch([first, backing_off, other_type, second, later])
    [claimed] = await store.claim(
        Claim(job_type=JobType.EMAIL, limit=1, worker_id="w", now=NOW, lease_expires_at=NOW + 30)
    )
    assert claimed.session_id == first.session_id
    place = await store.queue_place(later.session_id, NOW)
    # The claimed job and `second` come first; the backing-off one and the REPORT do not.
    assert place is not None and (place.status, place.job_type, place.ahead) == (
        JobStatus.PENDING,
        "EMAIL",
        2,
    )
    held = await store.queue_place(backing_off.session_id, NOW)
    assert held is not None and held.run_after == NOW + 60
    assert not held.attempted and not place.attempted  # never claimed
    assert await store.queue_place("no-such-job", NOW) is None


async def test_queue_place_tells_a_job_claimed_before_from_one_never_claimed(
    store: JobStore,
) -> None:
    retried, refunded, delayed = new_job(), new_job(), new_job(run_after=NOW + 60)
    await store.launch([retried, refunded, delayed])
    for job, refund in ((retried, False), (refunded, True)):
        claimed = await claim_one(store)
        assert claimed.session_id == job.session_id
        requeue = Requeue(
            session_id=job.session_id,
            attempt=claimed.attempt,
            info="again later",
            run_after=NOW + 30,
            now=NOW,
            refund=refund,
        )
        assert await store.requeue(requeue) is JobStatus.PENDING
    # A refund gives the attempt back (attempt 0 again), yet the job was claimed: only the
    # delayed launch was never attempted.
    refunded_job = await store.get(refunded.session_id)
    assert refunded_job is not None and refunded_job.attempt == 0
    attempted = {}
    for job in (retried, refunded, delayed):
        place = await store.queue_place(job.session_id, NOW)
        assert place is not None and place.status is JobStatus.PENDING
        attempted[job.session_id] = (place.attempted, place.run_after)
    assert attempted == {
        retried.session_id: (True, NOW + 30),
        refunded.session_id: (True, NOW + 30),
        delayed.session_id: (False, NOW + 60),
    }


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


async def test_progress_shows_only_on_the_running_attempt(store: JobStore) -> None:
    await store.launch([new_job()])
    held = await claim_one(store)
    lease = Lease(held.session_id, held.attempt)
    assert not await store.progress(lease, "not started yet", 0.1)  # DEQUEUED
    assert await store.start(lease, "running", NOW)
    assert await store.progress(lease, "half way", 0.5)
    assert await store.progress(lease, "still half way", None)
    assert not await store.progress(Lease(held.session_id, held.attempt + 1), "stale", 0.9)
    job = await store.get(held.session_id)
    assert job is not None and (job.info, job.progress) == ("still half way", 0.5)


async def test_a_workflow_lists_its_root_and_steps_in_launch_order(store: JobStore) -> None:
    root = new_job()
    await store.launch([root])
    held = await claim_one(store)
    children = [new_job(), new_job()]
    children = [msgspec.structs.replace(c, parent_session_id=root.session_id) for c in children]
    assert await store.finish(msgspec.structs.replace(finish(held), launches=children))
    grandchild = await claim_one(store)
    assert grandchild.session_id == children[0].session_id
    leaf = msgspec.structs.replace(new_job(), parent_session_id=children[0].session_id)
    assert await store.finish(msgspec.structs.replace(finish(grandchild), launches=[leaf]))
    expected = [root.session_id, children[0].session_id, children[1].session_id, leaf.session_id]
    for member in expected:
        assert [job.session_id for job in await store.workflow(member, 10)] == expected
    assert len(await store.workflow(root.session_id, 2)) == 2
    assert await store.workflow("no-such-job", 10) == []


async def test_a_refused_finish_drops_what_its_handler_launched_and_recorded(
    store: JobStore,
) -> None:
    await store.launch([new_job()])
    held = await claim_one(store)
    assert await store.rescue(Rescue(now=NOW + 31, horizon=NOW + 31))  # the worker was lost
    child = new_job()
    record = NewRecord(
        record_id="rec-1",
        kind="registry",
        session_id=held.session_id,
        username="alice",
        data={"x": "dropped-text"},
        created=NOW,
    )
    late = msgspec.structs.replace(finish(held), launches=[child], records=[record])
    assert not await store.finish(late)
    assert await store.get(child.session_id) is None
    assert await store.records_mentioning("dropped-text", 10) == []


async def test_records_are_found_by_id_or_by_text_they_mention(store: JobStore) -> None:
    await store.launch([new_job()])
    held = await claim_one(store)
    records = [
        NewRecord(
            record_id=f"10378.1/{n}",
            kind="registry",
            session_id=held.session_id,
            username="alice",
            data={"dataset": f"ds-{n}", "n": n},
            created=NOW + n,
        )
        for n in range(3)
    ]
    assert await store.finish(msgspec.structs.replace(finish(held), records=records))
    assert await store.records_mentioning("10378.1/1", 10) == [records[1]]
    assert await store.records_mentioning("ds-2", 10) == [records[2]]
    assert await store.records_mentioning("ds-", 2) == records[:2]  # oldest first
    assert await store.records_mentioning("nothing-like-it", 10) == []


async def test_batch_counts_count_each_status(store: JobStore) -> None:
    batch_id = str(uuid.uuid4())
    jobs = [new_job(batch_id=batch_id, new_batch=n == 0) for n in range(4)]
    await store.launch(jobs)
    held = await claim_one(store)
    assert await store.finish(finish(held))
    await claim_one(store)
    assert await store.batch_counts(batch_id) == {
        JobStatus.SUCCEEDED: 1,
        JobStatus.DEQUEUED: 1,
        JobStatus.PENDING: 2,
    }
    assert await store.batch_counts("no-such-batch") == {}


async def test_a_secret_is_made_once_and_survives_a_reopen(make_store: StoreFactory) -> None:
    first = make_store()
    await first.open()
    try:
        secret = await first.secret("signing")
        assert len(secret) >= 32 and await first.secret("signing") == secret
        assert await first.secret("other") != secret
    finally:
        await first.close()
    second = make_store()
    await second.open()
    try:
        assert await second.secret("signing") == secret
    finally:
        await second.close()


async def test_the_change_feed_names_changed_jobs_only_once_they_are_committed(
    store: JobStore,
) -> None:
    seen: dict[str, list[JobStatus | None]] = {}
    reads: list[asyncio.Task[None]] = []

    async def read_back(session_id: str) -> None:
        job = await store.get(session_id)
        seen.setdefault(session_id, []).append(job.status if job else None)

    def changed(session_ids: Iterable[str]) -> None:
        reads.extend(asyncio.create_task(read_back(s)) for s in session_ids)

    store.on_change = changed
    job = new_job()
    await store.launch([job])
    held = await claim_one(store)
    assert await store.start(Lease(held.session_id, held.attempt), "running", NOW)
    assert await store.finish(finish(held))

    async def all_seen() -> bool:
        await asyncio.gather(*reads)
        return JobStatus.SUCCEEDED in seen.get(job.session_id, [])

    await eventually(all_seen, what="the finish in the change feed")
    # Each notice came after its commit: reading the job back never found it missing.
    assert None not in seen[job.session_id]
    assert seen[job.session_id][-1] is JobStatus.SUCCEEDED


# -- scheduling and flow control (issue 14) -------------------------------------------------

PAUSED = "Waiting: paused."
LIMITED = "Waiting: rate limit."


def keyed(job: NewJob, key: str = "k1", fingerprint: str = "f1", now: float = NOW) -> KeyedLaunch:
    return KeyedLaunch(
        job=job,
        key=LaunchKey(
            username=job.username, key=key, fingerprint=fingerprint, now=now, expires_at=now + 60
        ),
    )


def flow(
    limit: int = 10,
    now: float = NOW,
    per_s: int | None = None,
    per_min: int | None = None,
    job_type: JobType = JobType.EMAIL,
) -> FlowClaim:
    return FlowClaim(
        claim=Claim(
            job_type=job_type, limit=limit, worker_id="w1", now=now, lease_expires_at=now + 30
        ),
        limits=StartLimits(per_s=per_s, per_min=per_min),
        paused_info=PAUSED,
        limited_info=LIMITED,
    )


async def test_a_keyed_launch_launches_once_and_returns_the_first_job(store: JobStore) -> None:
    first = await store.launch_once(keyed(new_job()))
    again = await store.launch_once(keyed(new_job(), fingerprint="other"))
    assert first.launched and not again.launched
    assert again.session_id == first.session_id and again.fingerprint == "f1"
    page = await store.list_jobs(ListScope(), 10, None)
    assert [job.session_id for job in page.jobs] == [first.session_id]


async def test_launch_keys_are_per_user_and_forgotten_once_expired(store: JobStore) -> None:
    alice = await store.launch_once(keyed(new_job("alice")))
    bob = await store.launch_once(keyed(new_job("bob")))
    assert alice.launched and bob.launched
    later = await store.launch_once(keyed(new_job("alice"), now=NOW + 60))
    assert later.launched and later.session_id != alice.session_id


async def test_racing_keyed_launches_launch_one_job(store: JobStore) -> None:
    outcomes = await asyncio.gather(*(store.launch_once(keyed(new_job())) for _ in range(20)))
    assert sum(o.launched for o in outcomes) == 1
    assert len({o.session_id for o in outcomes}) == 1


async def test_a_launch_with_info_waits_with_it_and_unkeyed_ones_all_launch(
    store: JobStore,
) -> None:
    job = new_job(run_after=NOW + 600)
    outcome = await store.launch_once(KeyedLaunch(job=job, info="Runs at noon."))
    assert outcome.launched
    stored = await store.get(job.session_id)
    assert stored is not None and stored.info == "Runs at noon."
    assert (await store.claim_flow(flow())).jobs == []  # not claimable before run_after
    assert (await store.claim_flow(flow(now=NOW + 600))).jobs[0].session_id == job.session_id


async def test_a_paused_type_claims_nothing_and_says_so_until_resumed(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    await store.open()
    job = new_job()
    await store.launch([job])
    other = new_job(job_type=JobType.REPORT)
    await store.launch([other])
    changed = await store.set_paused(
        Pause(job_type=JobType.EMAIL, paused=True, info=PAUSED, now=NOW)
    )
    assert changed == [job.session_id]
    await store.close()
    store = make_store()  # the pause survives a restart
    await store.open()
    assert await store.paused_types() == [JobType.EMAIL]
    later = new_job()
    await store.launch([later])
    claimed = await store.claim_flow(flow())
    assert claimed.paused and claimed.jobs == []
    for session_id in (job.session_id, later.session_id):
        waiting = await store.get(session_id)
        assert waiting is not None
        assert (waiting.status, waiting.info) == (JobStatus.PENDING, PAUSED)
    assert len((await store.claim_flow(flow(job_type=JobType.REPORT))).jobs) == 1
    await store.set_paused(Pause(job_type=JobType.EMAIL, paused=False, info=PAUSED, now=NOW))
    assert await store.paused_types() == []
    resumed = await store.get(job.session_id)
    assert resumed is not None and resumed.info is None
    assert len((await store.claim_flow(flow())).jobs) == 2
    await store.close()


async def test_start_limits_hold_claims_to_their_windows(store: JobStore) -> None:
    jobs = [new_job() for _ in range(10)]
    await store.launch(jobs)
    first = await store.claim_flow(flow(now=NOW + 0.1, per_s=2, per_min=5))
    assert len(first.jobs) == 2 and first.limited and first.retry_at == NOW + 1
    held = await store.get(jobs[5].session_id)
    assert held is not None and held.info == LIMITED
    assert len((await store.claim_flow(flow(now=NOW + 0.9, per_s=2, per_min=5))).jobs) == 0
    assert len((await store.claim_flow(flow(now=NOW + 1.0, per_s=2, per_min=5))).jobs) == 2
    last = await store.claim_flow(flow(now=NOW + 2.0, per_s=2, per_min=5))
    assert len(last.jobs) == 1 and last.retry_at == NOW + 60  # the minute is used up
    assert len((await store.claim_flow(flow(now=NOW + 60, per_s=2, per_min=5))).jobs) == 2


async def test_an_unlimited_flow_claim_is_a_plain_claim(store: JobStore) -> None:
    await store.launch([new_job() for _ in range(3)])
    claimed = await store.claim_flow(flow(limit=5))
    assert len(claimed.jobs) == 3 and not claimed.limited and not claimed.paused


async def test_a_schedule_due_time_fires_once(make_store: StoreFactory) -> None:
    store = make_store()
    await store.open()
    job = new_job()
    assert await store.fire_schedule(ScheduleFire(schedule="nightly", due_at=NOW, job=job))
    assert not await store.fire_schedule(
        ScheduleFire(schedule="nightly", due_at=NOW, job=new_job())
    )
    assert await store.fire_schedule(ScheduleFire(schedule="hourly", due_at=NOW, job=None))
    await store.close()
    store = make_store()
    await store.open()
    assert not await store.fire_schedule(
        ScheduleFire(schedule="nightly", due_at=NOW, job=new_job())
    )
    assert await store.fire_schedule(ScheduleFire(schedule="nightly", due_at=NOW + 60, job=None))
    fires = await store.last_fires()
    assert fires == {
        "nightly": LastFire(due_at=NOW + 60, session_id=None),
        "hourly": LastFire(due_at=NOW, session_id=None),
    }
    page = await store.list_jobs(ListScope(), 10, None)
    assert [j.session_id for j in page.jobs] == [job.session_id]
    await store.close()
