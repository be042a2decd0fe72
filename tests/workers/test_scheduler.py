"""Periodic schedules on real SQLite and a fake clock: each due time fires once (issue 14)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from provena_jobd.clock import FakeClock
from provena_jobd.config import from_dict
from provena_jobd.errors import ConfigError
from provena_jobd.models import JobStatus
from provena_jobd.queue.store import ListScope
from provena_jobd.server import JobdServer
from tests.helpers import eventually, job_in
from tests.workers.pool_helpers import DONE

Starter = Callable[..., Awaitable[JobdServer]]

T = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC


def schedule(**extra: Any) -> dict[str, Any]:
    return {
        "name": "wake",
        "cron": "*/5 * * * *",
        "job_type": "EMAIL",
        "job_sub_type": "EMAIL_WAKE_UP",
        "user": "ops",
        **extra,
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T - 10)


@pytest.fixture
async def start(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Starter]:
    """Start servers with these schedules on one database; stops them all afterwards."""
    started: list[JobdServer] = []

    async def starter(*schedules: dict[str, Any], cold_start_s: float = 0) -> JobdServer:
        raw = {
            "storage": {"db": str(tmp_path / "jobd.db")},
            "pool": {"cold_start_s": cold_start_s},
            "schedules": list(schedules),
        }
        server = JobdServer(from_dict(raw), clock=clock)
        started.append(server)
        await server.start()
        return server

    yield starter
    for server in started:
        await server.stop(grace_s=0)


async def start_with(start: Starter, *schedules: dict[str, Any]) -> JobdServer:
    """A server whose jobs wait (no worker gets ready); the tests call run_once themselves,
    with times after the background pass's (it sleeps until the next due time first)."""
    return await start(*schedules, cold_start_s=1e9)


async def all_jobs(server: JobdServer) -> list[Any]:
    return (await server.store.list_jobs(ListScope(), 100, None)).jobs


async def test_a_due_time_fires_once_and_the_job_is_the_schedules(start: Starter) -> None:
    server = await start_with(start, schedule(payload={}))
    assert await server.scheduler.run_once(T - 1) == []
    [session_id] = await server.scheduler.run_once(T)
    assert await server.scheduler.run_once(T + 5) == []
    [job] = await all_jobs(server)
    assert (job.session_id, job.username, job.job_sub_type) == (session_id, "ops", "EMAIL_WAKE_UP")
    assert len(await server.scheduler.run_once(T + 300)) == 1
    views = (await server.scheduler.views()).schedules
    assert views[0].last_due_at == T + 300 and views[0].next_run_at == T  # from the clock's now


async def test_a_restart_does_not_fire_a_recorded_due_time_again(
    start: Starter, clock: FakeClock
) -> None:
    first = await start_with(start, schedule())
    assert len(await first.scheduler.run_once(T)) == 1
    await first.stop(grace_s=0)
    second = await start_with(start, schedule())
    assert await second.scheduler.run_once(T + 30) == []
    assert len(await all_jobs(second)) == 1


@pytest.mark.parametrize(("missed", "launched"), [("skip", 0), ("run_once", 1)])
async def test_due_times_missed_while_down_follow_the_setting(
    start: Starter, missed: str, launched: int
) -> None:
    server = await start_with(start, schedule(missed=missed))
    assert len(await server.scheduler.run_once(T)) == 1
    assert len(await server.scheduler.run_once(T + 3 * 3600 + 100)) == launched
    assert await server.scheduler.run_once(T + 3 * 3600 + 110) == []
    assert len(await all_jobs(server)) == 1 + launched


async def test_the_background_pass_launches_a_job_that_runs(
    start: Starter, clock: FakeClock
) -> None:
    server = await start(schedule())
    await clock.advance(10)
    jobs = await eventually(lambda: all_jobs(server), what="the scheduled job")
    assert len(jobs) == 1
    assert (await job_in(server.store, jobs[0].session_id, *DONE)).status is JobStatus.SUCCEEDED


async def test_a_schedule_whose_job_cannot_launch_stops_startup(start: Starter) -> None:
    with pytest.raises(ConfigError, match="schedules\\['wake'\\]: its job cannot be launched"):
        await start(schedule(job_sub_type="SEND_EMAIL"))
