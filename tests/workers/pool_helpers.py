"""Shared helpers of the worker suites: servers on one database with a fake clock, launches,
pool snapshots and handlers that block or sleep on the clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from provena_jobd.clock import FakeClock
from provena_jobd.models import JobStatus, JobSubType, JobType, LaunchJobRequest
from provena_jobd.server import JobdServer
from provena_jobd.workers.handlers import Handler, JobContext
from provena_jobd.workers.process_pool import ProcessPool
from tests.helpers import settings_for

Starter = Callable[..., Awaitable[JobdServer]]
MakePool = Callable[..., Awaitable[tuple[JobdServer, ProcessPool]]]
DONE = (JobStatus.SUCCEEDED, JobStatus.FAILED)


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock the servers and the test share."""
    return FakeClock()


@pytest.fixture
async def start(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Starter]:
    """Start servers on one database with the fake clock; stops them all afterwards."""
    started: list[JobdServer] = []

    async def starter(
        handlers: Mapping[str, Handler] | None = None, **sections: dict[str, Any]
    ) -> JobdServer:
        server = JobdServer(settings_for(tmp_path, **sections), clock=clock, handlers=handlers)
        await server.start()
        started.append(server)
        return server

    yield starter
    for server in started:
        await server.stop(grace_s=0)


@pytest.fixture
async def make_pool(start: Starter, clock: FakeClock) -> AsyncIterator[MakePool]:
    """A REGISTRY process pool over a real jobd engine's store and gateway, ticked by hand
    (the engine's own pool never starts a process: it is given no URL).

    `make(command, sections, **settings)`: `settings` for `[pool.REGISTRY]`, `sections` for
    the rest of the config. The pool redacts what the engine's own would: the configuration's
    secrets and the worker token the engine made.
    """
    made: list[ProcessPool] = []

    async def make(
        command: list[str], sections: Mapping[str, dict[str, Any]] | None = None, **settings: Any
    ) -> tuple[JobdServer, ProcessPool]:
        server = await start(
            pool={"REGISTRY": {"command": command, **settings}}, **(sections or {})
        )
        own = server.pools["REGISTRY"]
        assert isinstance(own, ProcessPool)
        pool = ProcessPool(
            "REGISTRY",
            server.settings.pool_for("REGISTRY"),
            server.settings.queue,
            server.store,
            server.gateway,
            clock,
            own.secrets,
        )
        pool.token = own.token
        pool.jobd_url = "http://127.0.0.1:9"  # these workers never call jobd
        made.append(pool)
        return server, pool

    yield make
    for pool in made:
        await pool.drain(grace_s=0)  # stops the processes still running


def launch_request(sub_type: JobSubType) -> LaunchJobRequest:
    """A valid launch of one job of `sub_type`."""
    job_type = {
        JobSubType.SEND_EMAIL: JobType.EMAIL,
        JobSubType.EMAIL_WAKE_UP: JobType.EMAIL,
        JobSubType.REGISTRY_WAKE_UP: JobType.REGISTRY,
        JobSubType.GENERATE_REPORT: JobType.REPORT,
    }[sub_type]
    payload: dict[str, Any] = {}
    if sub_type is JobSubType.SEND_EMAIL:
        payload = {"email_to": "a@example.org", "subject": "s", "body": "b", "reason": "r"}
    return LaunchJobRequest(job_type=job_type, job_sub_type=sub_type, job_payload=payload)


async def launch(server: JobdServer, sub_type: JobSubType = JobSubType.SEND_EMAIL) -> str:
    """Launch one job of `sub_type` as alice; returns its id."""
    return (await server.service.launch(launch_request(sub_type), caller="alice")).session_id


async def launch_together(server: JobdServer, sub_type: JobSubType, count: int) -> list[str]:
    """Launch `count` jobs of `sub_type` as alice in one commit, in queue order (so one claim
    may take them all); returns their ids in that order."""
    request = launch_request(sub_type)
    jobs = [(await server.service.prepare(request, caller="alice"))[0] for _ in range(count)]
    await server.service.store.launch(jobs)
    server.notify(request.job_type)
    return [job.session_id for job in jobs]


async def workers(server: JobdServer, job_type: JobType = JobType.EMAIL) -> dict[str, int]:
    """How many of the pool's workers are provisioning, idle and busy."""
    return (await server.pools[job_type].snapshot()).workers


async def advance(server: JobdServer, clock: FakeClock, seconds: float) -> None:
    """Move the fake time, then wake every pool as its next poll would.

    A pool busy with the database (a real thread) while the fake time jumps schedules its next
    look from the new time, and only the clock moving on would wake it: with a real clock that
    is its poll interval; here, the nudge.
    """
    await clock.advance(seconds)
    for pool in server.pools.values():
        pool.notify()


def blocking_handler() -> tuple[Handler, asyncio.Event, list[str]]:
    """A handler that runs until released; records which jobs started."""
    release = asyncio.Event()
    started: list[str] = []

    async def handler(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        started.append(context.session_id)
        await release.wait()
        return {"ok": True}

    return handler, release, started


def sleeping_handler(seconds: float) -> Handler:
    """A handler that takes `seconds` of clock time."""

    async def handler(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        await context.clock.sleep(seconds)
        return {"slept": seconds}

    return handler


async def leave_a_cancel_count_behind() -> None:
    """Python 3.11's TaskGroup: a child failing while the group's exit waits leaves
    `current_task().cancelling() == 1` after the group is done."""

    async def boom() -> None:
        await asyncio.sleep(0)
        raise LookupError("no such record")

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(boom())
            group.create_task(asyncio.Event().wait())
    except* LookupError:
        pass  # the handler falls back and goes on


def stubborn(swallowed: list[str], result: dict[str, Any] | None = None) -> Handler:
    """A handler that swallows the first cancellation; then returns `result`, or sleeps on.

    A second cancellation (the test's teardown) ends it, so no task outlives the test.
    """

    async def handler(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            await context.clock.sleep(3_600)
        except asyncio.CancelledError:
            swallowed.append(context.session_id)
            if result is not None:
                return result
        await asyncio.Event().wait()
        return {}

    return handler


async def holds(value: bool) -> bool:
    """`value`, awaitable: for `eventually` with a plain condition."""
    return value
