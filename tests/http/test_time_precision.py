"""Every time the API shows is epoch seconds kept to the millisecond, whatever digits the
clock had: the attempt history, `waiting.ready_at`, and `/admin/pool`'s workers and start
back-off. Real engines on a fake clock that reads as a real one does (every digit)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from provena_jobd.clock import FakeClock
from provena_jobd.config import Settings
from provena_jobd.http.app import create_app
from provena_jobd.server import JobdServer
from provena_jobd.workers.handlers import Handler
from provena_jobd.workers.process_pool import ProcessPool
from tests.helpers import ServedAsJobd, eventually, settings_for
from tests.http.api_helpers import call, launch
from tests.workers.pool_helpers import blocking_handler

# The newcomer's `ended_at` of an attempt requeued at shutdown: every digit of the clock.
NOW = 1_796_167_072.6758838
DIES_AT_ONCE = [sys.executable, "-c", "import sys; sys.exit(3)"]


def to_ms(at: float) -> float:
    """`at` as the API shows it."""
    return round(at, 3)


@asynccontextmanager
async def served(
    settings: Settings, clock: FakeClock, handlers: dict[str, Handler] | None = None
) -> AsyncIterator[tuple[JobdServer, TestClient[Any, Any]]]:
    """A started engine and a test client of its API; stopped at once on the way out."""
    jobd = JobdServer(settings, clock=clock, handlers=handlers)
    await jobd.start()
    try:
        async with TestClient(ServedAsJobd(create_app(jobd))) as client:
            yield jobd, client
    finally:
        await jobd.stop(grace_s=0)


async def test_an_attempt_requeued_at_shutdown_shows_its_times_to_the_millisecond(
    tmp_path: Path,
) -> None:
    # The newcomer's run: a job runs, jobd stops, and after the restart the history says
    # when its attempt was handed back (and that it may run again from then).
    clock = FakeClock(NOW)
    handler, _, started = blocking_handler()
    async with served(settings_for(tmp_path), clock, {"EMAIL_WAKE_UP": handler}) as (_, client):
        session_id = (await launch(client))["session_id"]

        async def running() -> bool:
            return started == [session_id]

        await eventually(running, what="the job to run")
    restarted = settings_for(tmp_path, pool={"cold_start_s": 1e9})  # it stays PENDING now
    async with served(restarted, clock) as (_, client):
        history = await call(client, "GET", f"/jobs/admin/history?session_id={session_id}", 200)
        [attempt] = history["attempts"]
        assert attempt["outcome"] == "requeued_at_shutdown"
        assert attempt["claimed_at"] == attempt["started_at"] == 1_796_167_072.676
        # When it was handed back is when it may run again: down to the millisecond, so
        # that it is never later than the moment it was handed back.
        assert attempt["ended_at"] == attempt["retry_at"] == 1_796_167_072.675


async def test_waiting_and_the_pools_show_their_times_to_the_millisecond(
    tmp_path: Path,
) -> None:
    cold_start_s = 30.1234567
    settings = settings_for(
        tmp_path,
        pool={"EMAIL": {"cold_start_s": cold_start_s}, "REGISTRY": {"command": DIES_AT_ONCE}},
    )
    clock = FakeClock(NOW)
    async with served(settings, clock) as (jobd, client):
        jobd.set_public_url("http://127.0.0.1:9")  # as serve does; these never call jobd
        starting = (await launch(client))["session_id"]
        delayed = (await launch(client, delay_s=60.0000123))["session_id"]
        await launch(client, job_type="REGISTRY", job_sub_type="REGISTRY_WAKE_UP")
        processes = jobd.pools["REGISTRY"]
        assert isinstance(processes, ProcessPool)

        async def process_started() -> bool:
            return len(processes.processes) == 1

        await eventually(process_started, what="the worker process to start")
        await processes.processes[0].process.wait()
        processes.notify()  # the pool's next look finds the process gone: a failed start

        async def pools() -> dict[str, Any] | None:
            found = {
                p["job_type"]: p for p in (await call(client, "GET", "/admin/pool", 200))["pools"]
            }
            ready = found["EMAIL"]["worker_list"] and found["REGISTRY"]["start_backoff"]
            return found if ready else None

        found = await eventually(pools, what="a cold start and a failed process start")
        [worker] = found["EMAIL"]["worker_list"]
        assert (worker["since"], worker["ready_at"]) == (to_ms(NOW), to_ms(NOW + cold_start_s))
        assert found["REGISTRY"]["start_backoff"]["retry_at"] == to_ms(NOW + 1)

        async def waiting(session_id: str) -> dict[str, Any]:
            body = await call(client, "GET", f"/jobs/admin/fetch?session_id={session_id}", 200)
            said: dict[str, Any] = body["waiting"]
            return said

        cold = await waiting(starting)
        assert (cold["reason"], cold["ready_at"]) == ("cold_start", to_ms(NOW + cold_start_s))
        scheduled = await waiting(delayed)
        assert (scheduled["reason"], scheduled["ready_at"]) == (
            "scheduled",
            to_ms(NOW + 60.0000123),
        )
