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
from typing import Any

import msgspec

from provena_jobd.models import JobStatus, JobSubType
from provena_jobd.workers.handlers import JobContext
from tests.helpers import job_in
from tests.workers.pool_helpers import DONE, Starter, launch


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
