"""How far ahead a pool claims: further for jobs shorter than a commit, two per worker for
long ones, and never more than one claim's worth at a time."""

from __future__ import annotations

import asyncio
from typing import Any

from provena_jobd.clock import FakeClock
from provena_jobd.models import JobStatus, JobSubType, JobType
from provena_jobd.queue.store import ClaimedJob, FlowClaim, FlowClaimed
from provena_jobd.workers.claim_ahead import AHEAD_PER_WORKER, CLAIM_AT_MOST, ClaimAhead
from provena_jobd.workers.handlers import JobContext
from provena_jobd.workers.pool import Pool
from tests.helpers import eventually, job_in

from .pool_helpers import DONE, Starter, advance, blocking_handler, launch


def count_claims(pool: Pool) -> list[int]:
    """Record the size of every claim the pool makes."""
    sizes: list[int] = []
    claim_flow = pool.store.claim_flow

    async def counted(flow: FlowClaim) -> FlowClaimed:
        sizes.append(flow.claim.limit)
        return await claim_flow(flow)

    pool.store.claim_flow = counted  # type: ignore[method-assign]
    return sizes


async def test_jobs_shorter_than_a_commit_make_the_pool_claim_further_ahead(
    start: Starter, clock: FakeClock
) -> None:
    server = await start(pool={"max_workers": 1, "concurrency": 1})
    pool = server.pools[JobType.EMAIL]
    assert isinstance(pool, Pool)
    await job_in(server.store, await launch(server, JobSubType.EMAIL_WAKE_UP), *DONE)
    sizes = count_claims(pool)
    # Launched together, so that they wait together.
    ids = await asyncio.gather(*(launch(server, JobSubType.EMAIL_WAKE_UP) for _ in range(300)))
    for session_id in ids:
        assert (await job_in(server.store, session_id, *DONE)).status is JobStatus.SUCCEEDED
    # Two ahead per claim would take ~100 claims of 3; reaching further takes far fewer.
    assert max(sizes) > 1 + AHEAD_PER_WORKER
    assert len([size for size in sizes if size > 0]) < 60
    # A heartbeat period without short jobs (after the one they grew in): back to two.
    for _ in range(2):
        await advance(server, clock, server.settings.queue.lease_s)
        await pool.tick()

    async def reset() -> bool:
        return pool.ahead.per_worker == AHEAD_PER_WORKER

    await eventually(reset, what="the reach back at its minimum")


async def test_long_jobs_are_held_two_ahead_per_worker(start: Starter) -> None:
    handler, release, started = blocking_handler()
    server = await start({JobSubType.SEND_EMAIL: handler}, pool={"max_workers": 1})
    pool = server.pools[JobType.EMAIL]
    assert isinstance(pool, Pool)
    ids = [await launch(server) for _ in range(10)]

    async def held() -> bool:
        return len(started) == 1 and pool.claimed_ahead == AHEAD_PER_WORKER

    await eventually(held, what="one running, two claimed ahead")
    assert pool.ahead.per_worker == AHEAD_PER_WORKER
    release.set()
    for session_id in ids:
        await job_in(server.store, session_id, *DONE)


async def test_more_free_slots_than_one_claim_takes_all_fill_without_waiting(
    start: Starter,
) -> None:
    release = asyncio.Event()
    running = 0

    async def handler(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        nonlocal running
        running += 1
        await release.wait()
        return {}

    slots = CLAIM_AT_MOST * 2 + 10
    server = await start(
        {JobSubType.SEND_EMAIL: handler}, pool={"max_workers": 1, "concurrency": slots}
    )
    pool = server.pools[JobType.EMAIL]
    assert isinstance(pool, Pool)
    sizes = count_claims(pool)
    # Launched together: one wake-up for all of them, then the pool is on its own.
    ids = await asyncio.gather(*(launch(server) for _ in range(slots)))

    async def all_running() -> bool:
        return running == slots

    # The fake clock never moves: no poll interval is waited for.
    await eventually(all_running, what=f"{slots} jobs running")
    assert max(sizes) <= CLAIM_AT_MOST
    release.set()
    for session_id in ids:
        await job_in(server.store, session_id, *DONE)


def test_the_reach_doubles_on_a_dry_full_claim_and_steps_back_otherwise() -> None:
    ahead = ClaimAhead()
    ahead.claim_sent()
    ahead.slot_found_none()
    ahead.claim_back(claimed=4, wanted=4)
    assert ahead.per_worker == 2 * AHEAD_PER_WORKER
    ahead.claim_sent()
    ahead.slot_found_none()
    ahead.claim_back(claimed=1, wanted=9)  # dry, but the queue is empty: no use reaching
    assert ahead.per_worker == 2 * AHEAD_PER_WORKER
    ahead.claim_sent()
    ahead.claim_back(claimed=9, wanted=9)  # nobody waited: step back
    assert ahead.per_worker == 2 * AHEAD_PER_WORKER - 1
    ahead.heartbeat()  # it grew in this period: kept
    assert ahead.per_worker == 2 * AHEAD_PER_WORKER - 1
    ahead.heartbeat()  # no growth since the last one: back to the minimum
    assert ahead.per_worker == AHEAD_PER_WORKER
    assert ahead.wanted(free_slots=1000, ready_workers=3) == CLAIM_AT_MOST


def test_the_jobs_held_beyond_the_reach_are_the_newest_claimed() -> None:
    ahead = ClaimAhead()
    ahead.jobs.extend(claimed(f"job-{n}") for n in range(10))
    # Three free slots take three at once, and two ready workers keep two each ahead.
    surplus = ahead.take_surplus(free_slots=3, ready_workers=2)
    assert [job.session_id for job in surplus] == ["job-9", "job-8", "job-7"]
    assert [job.session_id for job in ahead.jobs] == [f"job-{n}" for n in range(7)]
    assert ahead.take_surplus(free_slots=3, ready_workers=2) == []
    # No worker left to run them: all go.
    assert len(ahead.take_surplus(free_slots=0, ready_workers=0)) == 7
    assert not ahead.jobs


def claimed(session_id: str) -> ClaimedJob:
    """A job claimed on its first attempt."""
    return ClaimedJob(
        session_id=session_id,
        created_timestamp=0,
        username="alice",
        batch_id=None,
        job_type=JobType.EMAIL,
        job_sub_type=JobSubType.SEND_EMAIL,
        payload=b"{}",
        attempt=1,
        max_attempts=3,
    )


def test_a_slot_dry_after_a_full_claim_counts_an_idle_one_in_an_empty_queue_does_not() -> None:
    ahead = ClaimAhead()
    ahead.slot_found_none()  # idle, nothing ever claimed: the queue may be empty
    ahead.claim_sent()
    ahead.claim_back(claimed=1, wanted=3)
    assert ahead.per_worker == AHEAD_PER_WORKER
    ahead.slot_found_none()  # after a claim that was not full: nothing was left waiting
    ahead.claim_sent()
    ahead.claim_back(claimed=3, wanted=3)
    assert ahead.per_worker == AHEAD_PER_WORKER
    # Full: jobs were left waiting, and a slot ran dry before the next claim was even sent.
    ahead.slot_found_none()
    ahead.claim_sent()
    ahead.claim_back(claimed=3, wanted=3)
    assert ahead.per_worker == 2 * AHEAD_PER_WORKER
