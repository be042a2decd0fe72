"""Crash suspects run alone after a restart (workers/isolation.py): a handler that ignores
its timeout, a cancel count a TaskGroup left behind, and a shutdown meanwhile must neither
stall the pools nor leave the suspect held by nobody."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from provena_jobd.clock import Clock, FakeClock, SystemClock
from provena_jobd.errors import StorageError
from provena_jobd.models import JobStatus, JobSubType
from provena_jobd.queue.sqlite import SqliteStore
from provena_jobd.queue.store import Claim, Lease
from provena_jobd.server import JobdServer
from provena_jobd.workers.handler_watch import CANCEL_GRACE_S
from provena_jobd.workers.handlers import JobContext
from provena_jobd.workers.isolation import Isolation
from provena_jobd.workers.shutdown import ShutdownTally
from tests.helpers import eventually, job_in, settings_for, settle
from tests.workers.pool_helpers import (
    DONE,
    Starter,
    advance,
    holds,
    launch,
    leave_a_cancel_count_behind,
    sleeping_handler,
    stubborn,
)


async def test_a_crash_suspect_whose_handler_ignores_its_timeout_is_failed_and_pools_resume(
    tmp_path: Path, start: Starter, clock: FakeClock
) -> None:
    suspect = await _suspect(await start(pool={"cold_start_s": 1_000}), tmp_path, clock)
    swallowed: list[str] = []
    second = await start(
        {"SEND_EMAIL": stubborn(swallowed), "EMAIL_WAKE_UP": sleeping_handler(0)},
        pool={"timeout_s": 10},
    )
    await job_in(second.store, suspect, JobStatus.IN_PROGRESS)
    after = await launch(second, JobSubType.EMAIL_WAKE_UP)
    await advance(second, clock, 10)
    await eventually(lambda: holds(swallowed == [suspect]), what="the stop to be swallowed")
    await advance(second, clock, CANCEL_GRACE_S)
    job = await job_in(second.store, suspect, *DONE)
    assert job.status is JobStatus.FAILED and job.info is not None
    assert job.info.endswith("It ignored the stop and was abandoned.")
    # The isolation did not wait for the abandoned handler: the pools run again.
    assert (await job_in(second.store, after, *DONE)).status is JobStatus.SUCCEEDED


async def _suspect(first: JobdServer, tmp_path: Path, clock: Clock) -> str:
    """A job a "previous process" (`first`, started with a long cold start) claimed before
    it died: at the next start, a suspect."""
    [suspect] = await _suspects(first, tmp_path, clock, 1)
    return suspect


async def _suspects(first: JobdServer, tmp_path: Path, clock: Clock, count: int) -> list[str]:
    """`count` suspects, oldest first, as `_suspect` makes one."""
    suspects = [await launch(first) for _ in range(count)]
    await first.stop(grace_s=0)
    dead = SqliteStore(tmp_path / "jobd.db")
    await dead.open()
    now = clock.now()
    claim = Claim(
        job_type="EMAIL", limit=count, worker_id="dead", now=now, lease_expires_at=now + 60
    )
    assert [job.session_id for job in await dead.claim(claim)] == suspects
    await dead.close()
    return suspects


async def test_a_suspect_that_times_out_after_a_task_group_still_lets_the_pools_resume(
    tmp_path: Path, start: Starter, clock: FakeClock
) -> None:
    suspect = await _suspect(await start(pool={"cold_start_s": 1_000}), tmp_path, clock)

    async def handler(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        await leave_a_cancel_count_behind()
        await context.clock.sleep(3_600)
        return {}

    second = await start(
        {"SEND_EMAIL": handler, "EMAIL_WAKE_UP": sleeping_handler(0)}, pool={"timeout_s": 10}
    )
    await job_in(second.store, suspect, JobStatus.IN_PROGRESS)
    after = await launch(second, JobSubType.EMAIL_WAKE_UP)
    await advance(second, clock, 10)
    assert (await job_in(second.store, suspect, *DONE)).status is JobStatus.FAILED
    assert (await job_in(second.store, after, *DONE)).status is JobStatus.SUCCEEDED


async def test_a_shutdown_during_isolation_stops_and_requeues_the_suspect_on_the_real_clock(
    tmp_path: Path,
) -> None:
    # Isolation cleans up inside its own task while it is being cancelled: the real clock's
    # waits must work there too (on Python 3.11.2 asyncio.timeout's did not: the handler was
    # never stopped and the suspect stayed IN_PROGRESS, held by nobody).
    clock = SystemClock()
    first = JobdServer(settings_for(tmp_path, pool={"cold_start_s": 1_000}), clock=clock)
    await first.start()
    suspect = await _suspect(first, tmp_path, clock)
    stopped: list[str] = []

    async def polite(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopped.append(context.session_id)
            raise
        return {}

    second = JobdServer(settings_for(tmp_path), clock=clock, handlers={"SEND_EMAIL": polite})
    await second.start()
    await job_in(second.store, suspect, JobStatus.IN_PROGRESS)
    await asyncio.wait_for(second.stop(grace_s=0), 5)
    store = SqliteStore(tmp_path / "jobd.db")
    await store.open()
    try:
        job = await store.get(suspect)
    finally:
        await store.close()
    assert stopped == [suspect]
    assert job is not None and (job.status, job.attempt) == (JobStatus.PENDING, 0)


async def test_a_shutdown_as_a_suspect_ends_runs_no_further_suspect(
    tmp_path: Path, start: Starter, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second_suspect = await _suspects(
        await start(pool={"cold_start_s": 1_000}), tmp_path, clock, 2
    )
    # The shutdown's cancel arrives while the first suspect's lease heartbeat is stopping.
    heartbeat_stopping, heartbeat_stops = asyncio.Event(), asyncio.Event()

    async def slow_to_stop(self: Isolation, lease: Lease) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            heartbeat_stopping.set()
            await heartbeat_stops.wait()
            raise

    monkeypatch.setattr(Isolation, "_heartbeat", slow_to_stop)
    ran: list[str] = []

    async def handler(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        ran.append(context.session_id)
        return {}

    second = await start({"SEND_EMAIL": handler})
    await heartbeat_stopping.wait()
    stopping = asyncio.create_task(second.isolation.stop())
    await settle()
    heartbeat_stops.set()
    await asyncio.wait_for(stopping, 5)
    assert ran == [first]
    job = await second.store.get(second_suspect)
    assert job is not None and job.status is JobStatus.PENDING  # still waits, a suspect
    assert await second.store.count_suspects() == 1


async def test_a_failed_heartbeat_does_not_hide_a_shutdown_from_the_isolation(
    tmp_path: Path, start: Starter, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    suspect = await _suspect(await start(pool={"cold_start_s": 1_000}), tmp_path, clock)

    async def fails(self: Isolation, lease: Lease) -> None:
        raise StorageError("write failed: database or disk is full")

    monkeypatch.setattr(Isolation, "_heartbeat", fails)
    running = asyncio.Event()

    async def handler(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        running.set()
        await asyncio.Event().wait()
        return {}

    second = await start({"SEND_EMAIL": handler})
    await running.wait()
    await settle()  # the heartbeat has failed
    await asyncio.wait_for(second.isolation.stop(), 5)  # stops, not "isolation step failed"
    job = await second.store.get(suspect)
    assert job is not None and job.status is JobStatus.PENDING  # back, still a suspect
    assert second.isolation.shutdown == ShutdownTally(finished=0, returned=1)
