"""The store contract, retention: pruning old finished jobs, whole batches and whole
workflows. Runs on real databases only."""

from __future__ import annotations

import uuid

import msgspec

from provena_jobd.models import JobStatus
from provena_jobd.queue.store import JobStore, NewJob, NewRecord, Prune

from .contract_helpers import NOW, claim_one, finish, new_job

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
