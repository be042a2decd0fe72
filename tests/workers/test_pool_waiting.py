"""`/admin/pool`'s waiting jobs while a pool moves jobs between the queue and its hold: a job
on its way (a claim's, once it commits; one handed back or returned at a shutdown, until its
requeue commits) is in neither, yet it waits all the same, and is counted once."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable, Callable

import pytest

from provena_jobd.cli.serve import stopped_message
from provena_jobd.clock import FakeClock
from provena_jobd.config import sqlite_path
from provena_jobd.models import JobStatus, JobSubType, JobType
from provena_jobd.pool_models import PoolSnapshot
from provena_jobd.queue.dialect import queries
from provena_jobd.queue.store import FlowClaim, FlowClaimed, Requeue
from provena_jobd.server import JobdServer
from provena_jobd.workers.pool import Pool
from provena_jobd.workers.shutdown import ShutdownTally
from tests.helpers import eventually

from .pool_helpers import Starter, advance, blocking_handler, launch_together
from .test_hand_back import ONE_WORKER, SLOTS, grow_then_hoard


def count_without_yielding(server: JobdServer) -> None:
    """Make the store count the waiting jobs straight from the database file, without giving
    the event loop a turn: a snapshot then counts what the database holds the moment it
    asks, and no pool moves on meanwhile (the real read waits for a thread)."""
    query = queries("sqlite")["waiting_by_type"]
    path = sqlite_path(server.settings.storage.db)

    async def waiting_by_type() -> dict[str, int]:
        with contextlib.closing(sqlite3.connect(path)) as database:
            return {str(kind): int(count) for kind, count in database.execute(query)}

    server.store.waiting_by_type = waiting_by_type  # type: ignore[method-assign]


async def email_pool_now(server: JobdServer, arrived: asyncio.Event) -> PoolSnapshot:
    """`/admin/pool`'s EMAIL pool, asked for while a move is on its way, which `arrived`
    lets land just after the ask."""
    snapshots = asyncio.create_task(server.pool_snapshots())
    arrived.set()
    return next(s for s in await snapshots if s.job_type == JobType.EMAIL)


async def pool_alone_now(server: JobdServer, arrived: asyncio.Event) -> PoolSnapshot:
    """The EMAIL pool's own snapshot (it reads the waiting count itself), asked for alike."""
    snapshot = asyncio.create_task(server.pools[JobType.EMAIL].snapshot())
    arrived.set()
    return await snapshot


@pytest.mark.parametrize("asked", [email_pool_now, pool_alone_now])
async def test_a_claims_jobs_count_as_waiting_while_its_answer_is_on_its_way(
    start: Starter, asked: Callable[[JobdServer, asyncio.Event], Awaitable[PoolSnapshot]]
) -> None:
    handler, release, _ = blocking_handler()
    server = await start({JobSubType.SEND_EMAIL: handler}, pool={"max_workers": 1})
    pool = server.pools[JobType.EMAIL]
    assert isinstance(pool, Pool)
    committed, answered = asyncio.Event(), asyncio.Event()
    claim_flow = pool.store.claim_flow

    async def answer_held(flow: FlowClaim) -> FlowClaimed:
        claimed = await claim_flow(flow)
        if claimed.jobs:  # committed: DEQUEUED in the database, not yet held by the pool
            committed.set()
            await answered.wait()
        return claimed

    pool.store.claim_flow = answer_held  # type: ignore[method-assign]
    await launch_together(server, JobSubType.SEND_EMAIL, 4)
    await committed.wait()  # one worker: one job for its slot, two ahead; one left PENDING
    count_without_yielding(server)
    email = await asked(server, answered)
    # Nothing has finished: each job is waiting or running, never neither.
    assert (email.waiting, email.running_jobs) == (3, 1)
    release.set()


async def test_jobs_handed_back_count_as_waiting_until_their_requeue_commits(
    start: Starter, clock: FakeClock
) -> None:
    handler, release, started = blocking_handler()
    server = await start({JobSubType.SEND_EMAIL: handler}, pool=ONE_WORKER)
    hoard = await grow_then_hoard(server, clock, started)
    asked, committing = asyncio.Event(), asyncio.Event()
    store_requeue = hoard.pool.store.requeue

    async def commit_held(requeue: Requeue) -> JobStatus | None:
        asked.set()  # out of the hold, still DEQUEUED in the database
        await committing.wait()
        return await store_requeue(requeue)

    hoard.pool.store.requeue = commit_held  # type: ignore[method-assign]
    # A heartbeat period without short jobs: the reach resets, the surplus goes back.
    await advance(server, clock, server.settings.queue.lease_s / 3)
    await asked.wait()
    count_without_yielding(server)
    email = await email_pool_now(server, committing)
    assert (email.waiting, email.running_jobs) == (len(hoard.long) - SLOTS, SLOTS)
    assert [job.session_id for job in hoard.pool.ahead.jobs] == hoard.kept  # they went back
    release.set()


async def test_jobs_claimed_ahead_count_as_waiting_while_a_shutdown_requeues_them(
    start: Starter,
) -> None:
    handler, release, started = blocking_handler()
    server = await start({JobSubType.SEND_EMAIL: handler}, pool={"max_workers": 1})
    pool = server.pools[JobType.EMAIL]
    assert isinstance(pool, Pool)
    await launch_together(server, JobSubType.SEND_EMAIL, 4)

    async def one_running_two_held() -> bool:
        return len(started) == 1 and pool.claimed_ahead == 2

    await eventually(one_running_two_held, what="one job running and two claimed ahead")
    asked, committing = asyncio.Event(), asyncio.Event()
    store_requeue = pool.store.requeue

    async def commit_held(requeue: Requeue) -> JobStatus | None:
        asked.set()  # out of the hold, still DEQUEUED in the database
        await committing.wait()
        return await store_requeue(requeue)

    pool.store.requeue = commit_held  # type: ignore[method-assign]
    draining = asyncio.create_task(pool.drain(grace_s=60))
    await asyncio.sleep(0)  # the drain has begun: the running job's slot takes nothing more
    release.set()  # ... and that job ends within the grace period: only the held two go back
    await asked.wait()
    count_without_yielding(server)
    email = await email_pool_now(server, committing)
    # The one that ran is done; the two held and the one never claimed wait.
    assert (email.waiting, email.running_jobs) == (3, 0)
    await draining
    # What `jobd serve` says as it stops.
    assert server.shutdown_tally() == ShutdownTally(finished=1, returned=2)
    assert stopped_message(server.shutdown_tally(), abandoned=0) == (
        "jobd: stopped (1 running job finished; 2 jobs went back to PENDING)"
    )


class _SlowHolders:
    """A cluster's worker slots whose list of holders is read only when `answer` is set."""

    node = "here"

    def __init__(self) -> None:
        self.reading, self.answer = asyncio.Event(), asyncio.Event()

    async def holders(self) -> list[object]:
        self.reading.set()
        await self.answer.wait()
        return []


@pytest.mark.parametrize("whole", [True, False], ids=["pool_snapshots", "snapshot"])
async def test_a_count_holds_a_pools_claims_for_its_reads_of_the_queue_only(
    start: Starter, whole: bool
) -> None:
    server = await start()
    pool = server.pools[JobType.EMAIL]
    assert isinstance(pool, Pool)
    slots = _SlowHolders()
    pool.slots = slots  # type: ignore[assignment]  # an idle pool: only a count reads them
    asked = asyncio.create_task(server.pool_snapshots() if whole else pool.snapshot())
    await slots.reading.wait()
    # The rest of the snapshot (here a cluster read that takes its time) holds up no claim.
    claims_free = not pool.ahead.moving.locked()
    slots.answer.set()
    await asked
    assert claims_free
