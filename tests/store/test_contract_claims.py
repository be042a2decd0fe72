"""The store contract, claims and the guarded life of a job: claims, transitions, fencing,
finishes, heartbeats, rescue and the change feed. Runs on real databases only."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import msgspec

from provena_jobd.models import JobStatus, JobType
from provena_jobd.queue.store import (
    Backoff,
    Claim,
    Finish,
    JobStore,
    Lease,
    NewRecord,
    Requeue,
    Rescue,
)
from tests.helpers import eventually

from .contract_helpers import NOW, claim_one, finish, new_job

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


async def test_the_change_feed_names_changed_jobs_only_once_they_are_committed(
    store: JobStore,
) -> None:
    seen: dict[str, list[JobStatus | None]] = {}
    reads: list[asyncio.Task[None]] = []
    # One read at a time, in the order of the notices (a lock is fair): on PostgreSQL reads
    # run on several connections, and an earlier one could otherwise end last.
    in_order = asyncio.Lock()

    async def read_back(session_id: str) -> None:
        async with in_order:
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
