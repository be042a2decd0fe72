"""Delayed jobs, paused job types and start limits in a real pool on a fake clock (issue 14)."""

from __future__ import annotations

from typing import Any

from provena_jobd.clock import FakeClock
from provena_jobd.flow_control import LIMITED_INFO, PAUSED_INFO
from provena_jobd.models import JobStatus, JobSubType, JobType, LaunchJobRequest
from provena_jobd.server import JobdServer
from tests.helpers import eventually, job_in, settle
from tests.workers.pool_helpers import DONE, Starter, advance

WAKE = {"job_type": JobType.EMAIL, "job_sub_type": JobSubType.EMAIL_WAKE_UP, "job_payload": {}}


async def launch(server: JobdServer, **extra: Any) -> str:
    request = LaunchJobRequest(**{**WAKE, **extra})
    return (await server.service.launch(request, caller="alice")).session_id


async def status(server: JobdServer, session_id: str) -> tuple[JobStatus, str | None]:
    job = await server.store.get(session_id)
    assert job is not None
    return job.status, job.info


async def test_a_delayed_job_pays_no_cold_start_before_its_time(
    start: Starter, clock: FakeClock
) -> None:
    server = await start(pool={"cold_start_s": 5})
    pool = server.pools[JobType.EMAIL]
    session_id = await launch(server, delay_s=60)
    for _ in range(3):
        await advance(server, clock, 19)
        await settle()
        await pool.tick()  # type: ignore[union-attr]
    assert pool.cold_starts == 0
    assert (await status(server, session_id))[0] is JobStatus.PENDING
    await advance(server, clock, 3)  # t = 60: due
    await eventually(lambda: _cold_starts(server), what="a worker to start")
    await advance(server, clock, 5)
    assert (await job_in(server.store, session_id, *DONE)).status is JobStatus.SUCCEEDED


async def _cold_starts(server: JobdServer) -> int:
    await settle()
    return server.pools[JobType.EMAIL].cold_starts


async def test_a_paused_type_keeps_jobs_pending_with_a_reason_until_resumed(
    start: Starter, clock: FakeClock
) -> None:
    server = await start()
    await server.flow.set_paused(JobType.EMAIL, True)
    session_id = await launch(server)
    info = PAUSED_INFO.format(job_type=JobType.EMAIL)

    async def says_paused() -> bool:
        return await status(server, session_id) == (JobStatus.PENDING, info)

    await eventually(says_paused, what="the job to say its type is paused")
    await advance(server, clock, 5)
    assert await says_paused()
    assert server.pools[JobType.EMAIL].cold_starts == 0
    other = await launch(server, job_type=JobType.REGISTRY, job_sub_type="REGISTRY_WAKE_UP")
    assert (await job_in(server.store, other, *DONE)).status is JobStatus.SUCCEEDED
    assert (await server.flow.paused()).paused == [JobType.EMAIL]
    await server.flow.set_paused(JobType.EMAIL, False)
    assert (await job_in(server.store, session_id, *DONE)).status is JobStatus.SUCCEEDED


async def test_a_pause_survives_a_restart(start: Starter, clock: FakeClock) -> None:
    first = await start()
    await first.flow.set_paused(JobType.EMAIL, True)
    await first.stop(grace_s=0)
    second = await start()
    session_id = await launch(second)
    await advance(second, clock, 2)
    await settle()
    assert (await status(second, session_id))[0] is JobStatus.PENDING
    await second.flow.set_paused(JobType.EMAIL, False)
    assert (await job_in(second.store, session_id, *DONE)).status is JobStatus.SUCCEEDED


async def test_a_start_limit_lets_n_jobs_start_per_window(start: Starter, clock: FakeClock) -> None:
    server = await start(pool={"max_starts_per_s": 2, "concurrency": 10, "max_workers": 1})
    ids = [await launch(server) for _ in range(5)]

    async def finished() -> int:
        await settle()
        jobs = [await server.store.get(i) for i in ids]
        return sum(1 for job in jobs if job and job.status is JobStatus.SUCCEEDED)

    await eventually(lambda: _at_least(finished, 2), what="two jobs to run")
    info = LIMITED_INFO.format(job_type=JobType.EMAIL, limits="2 per second")

    async def held() -> int:
        statuses = [await status(server, i) for i in ids]
        return statuses.count((JobStatus.PENDING, info))

    # The pool's last claim marks the held jobs in the writer thread: wait for it to commit.
    await eventually(lambda: _at_least(held, 3), what="three jobs to say they are held back")
    assert await finished() == 2
    assert await held() == 3
    await advance(server, clock, 1)
    await eventually(lambda: _at_least(finished, 4), what="two more jobs to run")
    assert await finished() == 4
    await advance(server, clock, 1)
    await eventually(lambda: _at_least(finished, 5), what="the last job to run")


async def _at_least(count: Any, n: int) -> bool:
    return bool(await count() >= n)
