"""Jobs claimed ahead for short jobs go back to the queue once the reach shrinks, so that when
jobs turn long they do not wait behind them here: another node runs them (both backends)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provena_jobd.clock import FakeClock
from provena_jobd.errors import StorageError
from provena_jobd.models import JobStatus, JobSubType, JobType
from provena_jobd.queue.messages import HANDED_BACK
from provena_jobd.queue.store import Requeue
from provena_jobd.server import JobdServer
from provena_jobd.workers.claim_ahead import AHEAD_PER_WORKER
from provena_jobd.workers.handlers import JobContext
from provena_jobd.workers.pool import Pool
from tests.helpers import eventually, job_in
from tests.postgres import empty

from .pool_helpers import Starter, advance, blocking_handler, launch_together

SHORT = 300  # a burst of jobs shorter than a commit: the reach grows
# One worker with enough slots that a burst runs them dry on PostgreSQL too (each start there
# is a round trip; SQLite starts a job claimed here at once).
SLOTS = 16
ONE_WORKER = {"max_workers": 1, "concurrency": SLOTS}
LONG = 64  # then long ones: more than the largest hoard (16 running + 32 ahead), so some wait
HANDED_BACK_ACTION = "claimed_ahead_returned"


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The `[storage]` section: a SQLite file, or the test run's PostgreSQL database."""
    if request.param == "sqlite":
        return {"db": str(tmp_path / "jobd.db")}
    return postgres(request)


def postgres(request: pytest.FixtureRequest) -> dict[str, str]:
    """The test run's PostgreSQL database, emptied, as a `[storage]` section."""
    url: str = request.getfixturevalue("postgres_database")
    empty(url)
    return {"db": url}


@pytest.fixture
def postgres_storage(request: pytest.FixtureRequest) -> dict[str, str]:
    """The `[storage]` section of nodes sharing the test run's PostgreSQL database."""
    return postgres(request)


@dataclass
class Hoard:
    """A pool busy with long jobs in every slot, holding many more claimed ahead."""

    pool: Pool
    long: list[str]  # the long jobs, in queue order
    held: list[str]  # those claimed ahead, oldest first

    @property
    def running(self) -> list[str]:
        """The long jobs in the slots."""
        return self.long[:SLOTS]

    @property
    def kept(self) -> list[str]:
        """The oldest held: what a pool at its minimum reach holds."""
        return self.held[:AHEAD_PER_WORKER]

    @property
    def surplus(self) -> list[str]:
        """The newest held: beyond the minimum reach."""
        return self.held[AHEAD_PER_WORKER:]

    @property
    def never_claimed(self) -> list[str]:
        """The long jobs beyond the hoard, still PENDING."""
        return self.long[SLOTS + len(self.held) :]


async def grow_then_hoard(server: JobdServer, clock: FakeClock, started: list[str]) -> Hoard:
    """Run a burst of short jobs (the reach grows), then launch long ones (the pool claims as
    far ahead as it reaches and fills its slots)."""
    pool = server.pools[JobType.EMAIL]
    assert isinstance(pool, Pool)
    for session_id in await launch_together(server, JobSubType.EMAIL_WAKE_UP, SHORT):
        await job_in(server.store, session_id, JobStatus.SUCCEEDED)

    async def idle() -> bool:
        return not pool.ahead.claiming and pool.running_jobs() == 0

    await eventually(idle, what="the burst over")
    assert pool.ahead.per_worker > AHEAD_PER_WORKER, "the burst did not make the pool reach"
    # A heartbeat period in which the reach grew: it is kept.
    await advance(server, clock, server.settings.queue.lease_s / 3)
    long = await launch_together(server, JobSubType.SEND_EMAIL, LONG)

    async def hoarded() -> bool:
        settled = not pool.ahead.claiming and pool.claimed_ahead >= pool.ahead.per_worker
        return sorted(started) == sorted(long[:SLOTS]) and settled

    await eventually(hoarded, what="long jobs in every slot, more claimed ahead")
    held = [job.session_id for job in pool.ahead.jobs]
    assert len(held) > AHEAD_PER_WORKER
    assert held == long[SLOTS : SLOTS + len(held)]
    for session_id in held:
        assert await status_and_attempt(server, session_id) == (JobStatus.DEQUEUED, 1)
    return Hoard(pool, long, held)


async def status_and_attempt(server: JobdServer, session_id: str) -> tuple[JobStatus, int]:
    """A job's status and attempt count, as the database has them."""
    job = await server.store.get(session_id)
    assert job is not None
    return job.status, job.attempt


async def heartbeat_without_growth(
    server: JobdServer, clock: FakeClock, hoard: Hoard, caplog: pytest.LogCaptureFixture
) -> list[str]:
    """Let a heartbeat period pass without short jobs; returns the jobs handed back, once the
    pool has logged them."""
    surplus = hoard.surplus
    with caplog.at_level(logging.INFO, logger="provena_jobd.workers.claim_ahead"):
        await advance(server, clock, server.settings.queue.lease_s / 3)

        async def logged() -> list[logging.LogRecord]:
            return [r for r in caplog.records if getattr(r, "action", "") == HANDED_BACK_ACTION]

        [line] = await eventually(logged, what="the hand-back logged")
    assert getattr(line, "jobs", None) == len(surplus)
    assert f"handed {len(surplus)} EMAIL jobs" in line.getMessage()
    return surplus


async def test_jobs_claimed_ahead_beyond_a_shrunk_reach_go_back_to_the_queue_in_place(
    start: Starter,
    clock: FakeClock,
    storage: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler, release, started = blocking_handler()
    server = await start({JobSubType.SEND_EMAIL: handler}, pool=ONE_WORKER, storage=storage)
    hoard = await grow_then_hoard(server, clock, started)

    surplus = await heartbeat_without_growth(server, clock, hoard, caplog)
    # The newest claimed went back, waiting again as if never claimed (attempt refunded), in
    # their place: after the jobs still held, before those launched after them.
    for place, session_id in enumerate(surplus, start=len(hoard.kept)):
        job = await server.store.get(session_id)
        assert job is not None
        assert (job.status, job.attempt, job.info) == (JobStatus.PENDING, 0, HANDED_BACK)
        waiting = await server.store.queue_place(session_id, clock.now())
        assert waiting is not None and waiting.ahead == place
    # The oldest stay, two per worker, still held; the running ones were never touched.
    assert [job.session_id for job in hoard.pool.ahead.jobs] == hoard.kept
    assert hoard.pool.ahead.per_worker == AHEAD_PER_WORKER
    for session_id in hoard.kept:
        assert await status_and_attempt(server, session_id) == (JobStatus.DEQUEUED, 1)
    for session_id in hoard.running:
        assert await status_and_attempt(server, session_id) == (JobStatus.IN_PROGRESS, 1)

    release.set()
    for session_id in hoard.long:
        assert (await job_in(server.store, session_id, JobStatus.SUCCEEDED)).attempt == 1
    assert sorted(started) == sorted(hoard.long)  # each ran, once


async def test_jobs_handed_back_run_at_once_on_an_idle_node_while_this_one_is_busy(
    start: Starter,
    clock: FakeClock,
    postgres_storage: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler, release, started = blocking_handler()
    busy = await start({JobSubType.SEND_EMAIL: handler}, pool=ONE_WORKER, storage=postgres_storage)
    hoard = await grow_then_hoard(busy, clock, started)
    surplus = await heartbeat_without_growth(busy, clock, hoard, caplog)
    ran_on_idle: list[str] = []

    async def quick(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        ran_on_idle.append(context.session_id)
        return {}

    # Another node, idle, in the cluster's second worker slot (one slot: it runs in claim
    # order). It joins now: from the start, it would have shared the burst.
    idle = await start(
        {JobSubType.SEND_EMAIL: quick},
        pool={"max_workers": 2, "concurrency": 1},
        storage=postgres_storage,
    )
    for session_id in surplus + hoard.never_claimed:
        job = await job_in(idle.store, session_id, JobStatus.SUCCEEDED)
        assert job.attempt == 1  # the attempt on the busy node was refunded
    # Those handed back first: they kept their place in the queue.
    assert ran_on_idle == surplus + hoard.never_claimed
    assert sorted(started) == sorted(hoard.running)  # the busy node is still busy

    release.set()
    for session_id in hoard.long:
        await job_in(busy.store, session_id, JobStatus.SUCCEEDED)
    assert sorted(started) == sorted(hoard.running + hoard.kept)


async def test_jobs_that_cannot_go_back_stay_held_and_go_at_the_next_heartbeat(
    start: Starter, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    handler, release, started = blocking_handler()
    server = await start({JobSubType.SEND_EMAIL: handler}, pool=ONE_WORKER)
    hoard = await grow_then_hoard(server, clock, started)
    store = hoard.pool.store
    requeue = store.requeue

    async def disk_full(requeue: Requeue) -> JobStatus | None:
        raise StorageError("database or disk is full")

    store.requeue = disk_full  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="provena_jobd.workers.claim_ahead"):
        await advance(server, clock, server.settings.queue.lease_s / 3)

        async def warned() -> list[logging.LogRecord]:
            return [r for r in caplog.records if getattr(r, "action", "") == "hand_back_failed"]

        [line] = await eventually(warned, what="the failed hand-back logged")
    assert f"could not hand {len(hoard.surplus)} EMAIL jobs" in line.getMessage()
    # Nothing lost: all still held here, in order, and still theirs in the database.
    assert [job.session_id for job in hoard.pool.ahead.jobs] == hoard.held
    for session_id in hoard.held:
        assert await status_and_attempt(server, session_id) == (JobStatus.DEQUEUED, 1)

    store.requeue = requeue  # type: ignore[method-assign]
    assert await heartbeat_without_growth(server, clock, hoard, caplog) == hoard.surplus
    for session_id in hoard.surplus:
        assert await status_and_attempt(server, session_id) == (JobStatus.PENDING, 0)
    release.set()
    for session_id in hoard.long:
        await job_in(server.store, session_id, JobStatus.SUCCEEDED)
    assert sorted(started) == sorted(hoard.long)
