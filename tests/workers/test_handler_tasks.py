"""A handler runs in a task of its own, from its first line: asyncio's timeouts and task
groups (and the libraries built on them: aiohttp's and asyncpg's timeouts, anyio's cancel
scopes) act on the handler, never on the pool that runs it.

Running a handler's first step inside the pool's task (to save a task for handlers that
return at once) broke exactly this: a timeout entered in the first step cancelled the pool's
task, the job stayed IN_PROGRESS and was run again after its lease ran out. Now the job's own
task is the handler's, from its first line to its end (workers/handler_watch.py).
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import msgspec

from provena_jobd.clock import FakeClock
from provena_jobd.models import JobStatus, JobSubType
from provena_jobd.workers.handlers import JobContext
from tests.helpers import job_in
from tests.workers.pool_helpers import (
    DONE,
    Starter,
    advance,
    launch,
    launch_together,
    leave_a_cancel_count_behind,
)


async def test_a_timeout_entered_before_the_first_wait_ends_the_wait_not_the_job(
    start: Starter,
) -> None:
    async def handler(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            async with asyncio.timeout(0.05):  # entered before the handler ever waited
                await asyncio.Event().wait()
        except TimeoutError:
            return {"timed_out": True}
        return {}

    server = await start({JobSubType.SEND_EMAIL: handler})
    job = await job_in(server.store, await launch(server), *DONE)
    assert job.status is JobStatus.SUCCEEDED
    assert job.result is not None and msgspec.json.decode(job.result) == {"timed_out": True}
    assert job.attempt == 1  # not run again after a lost lease


async def test_a_task_group_whose_child_fails_fails_the_job_with_its_error(
    start: Starter,
) -> None:
    async def child() -> None:
        await asyncio.sleep(0)
        raise LookupError("the registry has no such record")

    async def handler(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        async with asyncio.TaskGroup() as group:
            group.create_task(child())
            group.create_task(asyncio.Event().wait())
        return {}

    server = await start({JobSubType.SEND_EMAIL: handler})
    job = await job_in(server.store, await launch(server), *DONE)
    assert job.status is JobStatus.FAILED
    assert "TaskGroup" in (job.info or "") and job.attempt == 1


async def test_a_cancel_count_a_task_group_left_behind_is_no_shutdown(
    start: Starter, clock: FakeClock
) -> None:
    runs: list[int] = []

    async def handler(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        runs.append(context.attempt)
        if len(runs) == 1:
            await leave_a_cancel_count_behind()
            await context.clock.sleep(3_600)  # the pool's timeout stops it
        return {}

    server = await start({JobSubType.SEND_EMAIL: handler}, pool={"timeout_s": 10})
    session_id = await launch(server)
    await job_in(server.store, session_id, JobStatus.IN_PROGRESS)
    await advance(server, clock, 10)
    job = await job_in(server.store, session_id, *DONE)
    assert (job.status, job.attempt, runs) == (JobStatus.FAILED, 1, [1])
    assert job.info == "Job timed out: its handler ran longer than 10 s and was stopped."


async def test_a_handler_that_cancels_its_own_task_fails_its_job(start: Starter) -> None:
    async def handler(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().call_soon(task.cancel)  # a hand-made timeout
        await asyncio.Event().wait()
        return {}

    server = await start({JobSubType.SEND_EMAIL: handler})
    job = await job_in(server.store, await launch(server), *DONE)
    assert (job.status, job.attempt) == (JobStatus.FAILED, 1)
    assert "CancelledError" in (job.info or "")


_TENANT: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default="none")


async def test_a_handler_does_not_see_the_contextvars_a_previous_job_set(start: Starter) -> None:
    seen: list[str] = []

    async def handler(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        seen.append(_TENANT.get())
        _TENANT.set(context.session_id)  # e.g. a log correlation id, never reset
        return {}

    server = await start({JobSubType.EMAIL_WAKE_UP: handler})
    for session_id in await launch_together(server, JobSubType.EMAIL_WAKE_UP, 4):
        await job_in(server.store, session_id, *DONE)
    assert seen == ["none"] * 4
