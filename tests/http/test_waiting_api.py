"""`waiting` on fetch and each worker on `/admin/pool`: why a job has not started."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from provena_jobd.clock import FakeClock
from provena_jobd.errors import RetryLater
from provena_jobd.http.app import create_app
from provena_jobd.server import JobdServer
from provena_jobd.workers.handlers import JobContext
from provena_jobd.workers.process_pool import ProcessPool
from tests.helpers import ServedAsJobd, eventually, settings_for
from tests.http.api_helpers import call, client, launch, server

__all__ = ["client", "server"]  # the fixtures

# How a job waiting on a REGISTRY pool whose starts keep failing begins its message.
NO_WORKER = "No REGISTRY worker is running: "


async def test_a_pending_job_in_a_cold_start_says_so(
    client: TestClient[Any, Any], server: JobdServer
) -> None:
    first = await launch(client)
    second = await launch(client)

    async def provisioning() -> dict[str, Any] | None:
        pools = await call(client, "GET", "/admin/pool", 200)
        email = next(p for p in pools["pools"] if p["job_type"] == "EMAIL")
        return email if email["worker_list"] else None

    email = await eventually(provisioning, what="a worker provisioning")
    worker = email["worker_list"][0]
    assert {w["state"] for w in email["worker_list"]} == {"provisioning"}
    assert worker["ready_at"] == worker["since"] + 1e9  # the fixture's cold start
    body = await call(client, "GET", f"/jobs/user/fetch?session_id={second['session_id']}", 200)
    assert body["waiting"]["reason"] == "cold_start"
    assert body["waiting"]["ready_at"] == worker["ready_at"]
    assert body["waiting"]["ahead"] == 1  # the first job
    assert "finish starting (cold start)" in body["waiting"]["message"]
    cancelled = await call(
        client, "POST", f"/jobs/user/cancel?session_id={first['session_id']}", 200
    )
    assert "waiting" not in cancelled  # ended jobs do not wait
    ended = await call(client, "GET", f"/jobs/admin/fetch?session_id={first['session_id']}", 200)
    assert "waiting" not in ended


async def test_history_follows_the_fetch_access_rules(client: TestClient[Any, Any]) -> None:
    mine = await launch(client)
    theirs = await launch(client, username="bob")
    body = await call(client, "GET", f"/jobs/user/history?session_id={mine['session_id']}", 200)
    assert body == {"session_id": mine["session_id"], "attempts": []}  # never claimed yet
    await call(client, "GET", f"/jobs/user/history?session_id={theirs['session_id']}", 401)
    await call(client, "GET", "/jobs/admin/history?session_id=nope", 400)
    await call(client, "GET", "/jobs/admin/history", 422)
    admin = await call(client, "GET", f"/jobs/admin/history?session_id={theirs['session_id']}", 200)
    assert admin["attempts"] == []


async def test_a_job_of_a_paused_type_says_its_type_is_paused(client: TestClient[Any, Any]) -> None:
    await call(client, "POST", "/admin/pause?job_type=EMAIL", 200)
    waiting = await launch(client)
    body = await call(client, "GET", f"/jobs/user/fetch?session_id={waiting['session_id']}", 200)
    assert body["waiting"]["reason"] == "paused"
    assert "EMAIL is paused" in body["waiting"]["message"]
    await call(client, "POST", "/admin/resume?job_type=EMAIL", 200)
    body = await call(client, "GET", f"/jobs/user/fetch?session_id={waiting['session_id']}", 200)
    assert body["waiting"]["reason"] != "paused"


async def flaky(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Fails its first attempt with a transient error, then succeeds."""
    if context.attempt == 1:
        raise RetryLater("the registry was busy")
    return {}


async def test_a_delayed_launch_says_scheduled_and_a_retried_job_backing_off(
    tmp_path: Path,
) -> None:
    # A ready worker (no cold start) on a clock that stays put: the retry waits out its
    # 30 s back-off and the delayed job its 60 s for as long as the test looks.
    settings = settings_for(tmp_path, queue={"backoff_base_s": 30.0, "backoff_max_s": 30.0})
    clock = FakeClock()
    jobd = JobdServer(settings, clock=clock, handlers={"EMAIL_WAKE_UP": flaky})
    await jobd.start()
    try:
        async with TestClient(ServedAsJobd(create_app(jobd))) as client:
            now = clock.now()
            delayed = await launch(client, delay_s=60)
            retried = await launch(client)

            async def fetch(session_id: str) -> dict[str, Any]:
                body: dict[str, Any] = await call(
                    client, "GET", f"/jobs/user/fetch?session_id={session_id}", 200
                )
                return body

            async def backing_off() -> dict[str, Any] | None:
                body = await fetch(retried["session_id"])
                job = body["job"]
                return body if (job["status"], job["attempt"]) == ("PENDING", 1) else None

            body = await eventually(backing_off, what="the first attempt to fail and retry")
            history = await call(
                client, "GET", f"/jobs/user/history?session_id={retried['session_id']}", 200
            )
            [attempt] = history["attempts"]
            assert attempt["outcome"] == "retrying" and attempt["retry_at"] == now + 30
            # Claimed by jobd's own pool of EMAIL (which claims ahead for its workers).
            assert attempt["worker_id"] == "EMAIL-pool" and attempt["node"] is None
            assert body["waiting"] == {
                "reason": "backing_off",
                "message": "Backing off after a failed attempt; the next attempt is in about 30 s.",
                "ready_at": now + 30,
            }

            body = await fetch(delayed["session_id"])
            assert body["job"]["status"] == "PENDING" and body["job"]["attempt"] == 0
            info = body["job"]["info"]
            assert info.startswith("Scheduled: waits until ")  # the launch's words
            assert body["waiting"] == {
                "reason": "scheduled",
                "message": f"{info} The wait ends in about 60 s.",
                "ready_at": now + 60,
            }
            # The API's document lists the new reason with the others.
            document = await call(client, "GET", "/openapi.json", 200)
            reasons = document["components"]["schemas"]["WaitReason"]["enum"]
            assert {"scheduled", "backing_off"} <= set(reasons)
    finally:
        await jobd.stop(grace_s=0)


async def test_a_job_waiting_for_worker_processes_that_fail_to_start_says_so(
    tmp_path: Path,
) -> None:
    # A process pool whose command exits at once, on a clock that moves only when told: the
    # pool pauses 1 s after the first failed start, 2 s after the second.
    dies_at_once = [sys.executable, "-c", "import sys; sys.exit(3)"]
    settings = settings_for(tmp_path, pool={"REGISTRY": {"command": dies_at_once}})
    clock = FakeClock()
    jobd = JobdServer(settings, clock=clock)
    pool = jobd.pools["REGISTRY"]
    assert isinstance(pool, ProcessPool)
    await jobd.start()
    try:
        async with TestClient(ServedAsJobd(create_app(jobd))) as client:
            jobd.set_public_url("http://127.0.0.1:9")  # as serve does; these never call jobd
            launched = await launch(
                client, job_type="REGISTRY", job_sub_type="REGISTRY_WAKE_UP", job_payload={}
            )
            fetch = f"/jobs/user/fetch?session_id={launched['session_id']}"

            async def started(count: int) -> bool:
                return pool.cold_starts == count and len(pool.processes) == 1

            async def pausing_after(failures: str) -> dict[str, Any] | None:
                body: dict[str, Any] = await call(client, "GET", fetch, 200)
                said = body["waiting"]["message"]
                return body if said.startswith(f"{NO_WORKER}{failures} failed in a row") else None

            async def next_start_fails(failures: str) -> dict[str, Any]:
                await pool.processes[0].process.wait()
                pool.notify()  # the pool's next look finds the process gone
                return await eventually(
                    lambda: pausing_after(failures), what="the failed start to show"
                )

            await eventually(lambda: started(1), what="the first process to start")
            body = await next_start_fails("1 worker process start")
            assert body["job"]["status"] == "PENDING"
            failing = "1 worker process start failed in a row (the last exited with code 3)"
            assert body["waiting"] == {
                "reason": "start_failing",
                "message": f"{NO_WORKER}{failing}; next start at 2027-01-15 08:00:01 UTC, "
                "in about 1 s.",
                "ready_at": clock.now() + 1,
                "ahead": 0,
            }
            # The pool says it in the same words, for the Pools page and `jobd pool`.
            pools = await call(client, "GET", "/admin/pool", 200)
            [registry] = [p for p in pools["pools"] if p["job_type"] == "REGISTRY"]
            assert registry["start_backoff"]["message"] == (
                f"{failing}; next start at 2027-01-15 08:00:01 UTC."
            )

            # The pause is over and the next process starts: not a plain cold start, a start
            # after one that failed (a process pool does not know when it will be ready).
            await clock.advance(1)  # wakes the pool, asleep until then
            await eventually(lambda: started(2), what="the second process to start")
            body = await call(client, "GET", fetch, 200)
            assert body["waiting"] == {
                "reason": "start_failing",
                "message": f"{NO_WORKER}{failing}; another is being started, ready in about 1 s.",
                "ready_at": clock.now() + pool.settings.cold_start_s,
                "ahead": 0,
            }
            body = await next_start_fails("2 worker process starts")
            assert body["waiting"]["ready_at"] == clock.now() + 2

            document = await call(client, "GET", "/openapi.json", 200)
            assert "start_failing" in document["components"]["schemas"]["WaitReason"]["enum"]
    finally:
        await jobd.stop(grace_s=0)
