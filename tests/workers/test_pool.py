"""Worker pools on real SQLite, driven by a fake clock: cold start, scaling, idle shutdown,
failures, timeouts, retries, rescue and graceful shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec
import pytest

from provena_jobd.clock import FakeClock
from provena_jobd.errors import RetryLater
from provena_jobd.models import JobStatus, JobSubType, JobType, LaunchJobRequest
from provena_jobd.queue.store import Claim, ClaimedJob, Lease
from provena_jobd.server import JobdServer
from provena_jobd.workers.handlers import Handler, JobContext
from provena_jobd.workers.pool import Pool
from provena_jobd.workers.pool_workers import WorkerState
from tests.helpers import eventually, job_in, settings_for, settle

Starter = Callable[..., Awaitable[JobdServer]]
DONE = (JobStatus.SUCCEEDED, JobStatus.FAILED)


@pytest.fixture
def clock() -> FakeClock:
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


async def launch(server: JobdServer, sub_type: JobSubType = JobSubType.SEND_EMAIL) -> str:
    job_type = {
        JobSubType.SEND_EMAIL: JobType.EMAIL,
        JobSubType.EMAIL_WAKE_UP: JobType.EMAIL,
        JobSubType.REGISTRY_WAKE_UP: JobType.REGISTRY,
        JobSubType.GENERATE_REPORT: JobType.REPORT,
    }[sub_type]
    payload: dict[str, Any] = {}
    if sub_type is JobSubType.SEND_EMAIL:
        payload = {"email_to": "a@example.org", "subject": "s", "body": "b", "reason": "r"}
    request = LaunchJobRequest(job_type=job_type, job_sub_type=sub_type, job_payload=payload)
    return (await server.service.launch(request, caller="alice")).session_id


async def workers(server: JobdServer, job_type: JobType = JobType.EMAIL) -> dict[str, int]:
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


async def test_a_wake_up_job_starts_a_pool_and_succeeds_with_an_empty_result(
    start: Starter,
) -> None:
    server = await start()
    session_id = await launch(server, JobSubType.REGISTRY_WAKE_UP)
    job = await job_in(server.store, session_id, *DONE)
    assert job.status is JobStatus.SUCCEEDED and bytes(job.result) == b"{}"
    assert await workers(server, JobType.REGISTRY) == {"provisioning": 0, "idle": 1, "busy": 0}


async def test_jobs_stay_pending_through_the_cold_start(start: Starter, clock: FakeClock) -> None:
    server = await start(pool={"cold_start_s": 30})
    session_id = await launch(server, JobSubType.EMAIL_WAKE_UP)

    async def provisioning() -> bool:
        return (await workers(server))["provisioning"] == 1

    await eventually(provisioning, what="a worker to provision")
    await advance(server, clock, 29)
    await settle()
    job = await server.store.get(session_id)
    assert job is not None and job.status is JobStatus.PENDING
    await advance(server, clock, 1)
    assert (await job_in(server.store, session_id, *DONE)).status is JobStatus.SUCCEEDED
    assert server.pools[JobType.EMAIL].cold_starts == 1


async def test_the_pool_scales_with_waiting_jobs_up_to_max_workers(start: Starter) -> None:
    handler, release, started = blocking_handler()
    server = await start({JobSubType.SEND_EMAIL: handler}, pool={"max_workers": 3})
    ids = [await launch(server) for _ in range(5)]

    async def three_busy() -> bool:
        return (await workers(server))["busy"] == 3 and len(started) == 3

    await eventually(three_busy, what="three busy workers")
    assert server.pools[JobType.EMAIL].cold_starts == 3
    assert (await server.pools[JobType.EMAIL].snapshot()).waiting == 2
    release.set()
    for session_id in ids:
        assert (await job_in(server.store, session_id, *DONE)).status is JobStatus.SUCCEEDED
    assert server.pools[JobType.EMAIL].cold_starts == 3  # the three workers took the rest


async def test_idle_timeout_counts_from_the_end_of_the_last_job(
    start: Starter, clock: FakeClock
) -> None:
    # The reference's worker stamps the *start* of a job, so after a job longer than the idle
    # timeout it exits and strands the next message. Here the worker takes it.
    server = await start(
        {JobSubType.SEND_EMAIL: sleeping_handler(150)},
        pool={"max_workers": 1, "idle_timeout_s": 120},
        # Leases are not under test: a 150 s jump of the fake clock must not race the
        # heartbeat's database write against the rescuer.
        queue={"lease_s": 10_000},
    )
    first, second = await launch(server), await launch(server)
    await job_in(server.store, first, JobStatus.IN_PROGRESS)
    await settle()  # the handler's task is sleeping on the clock before time moves
    await advance(server, clock, 150)
    await job_in(server.store, first, JobStatus.SUCCEEDED)
    await job_in(server.store, second, JobStatus.IN_PROGRESS)
    await settle()
    await advance(server, clock, 150)
    await job_in(server.store, second, JobStatus.SUCCEEDED)
    assert server.pools[JobType.EMAIL].cold_starts == 1

    async def idle() -> bool:
        return await workers(server) == {"provisioning": 0, "idle": 1, "busy": 0}

    await eventually(idle, what="the worker to be idle")
    await advance(server, clock, 119)
    assert await workers(server) == {"provisioning": 0, "idle": 1, "busy": 0}
    await advance(server, clock, 1)

    async def retired() -> bool:
        return await workers(server) == {"provisioning": 0, "idle": 0, "busy": 0}

    await eventually(retired, what="the idle worker to stop")
    # A job after the shutdown needs a new worker (a new cold start).
    third = await launch(server)
    await job_in(server.store, third, JobStatus.IN_PROGRESS)
    assert server.pools[JobType.EMAIL].cold_starts == 2


async def test_a_handler_exception_fails_the_job_with_the_reference_info(start: Starter) -> None:
    async def broken(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("the registry is down")

    server = await start({JobSubType.SEND_EMAIL: broken})
    job = await job_in(server.store, await launch(server), *DONE)
    assert job.status is JobStatus.FAILED
    assert job.info == (
        "Callback function raised unhandled exception. Error: the registry is down."
    )
    assert bytes(job.result) == b"null"


async def echo(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """A handler loaded by name from the config (`tests.workers.test_pool:echo`)."""
    return {"echo": payload}


async def test_a_job_whose_sub_type_was_removed_from_the_config_fails_clearly(
    start: Starter,
) -> None:
    declared = {
        "ECHO": {
            "job_type": "REGISTRY",
            "handler": "python",
            "callable": "tests.workers.test_pool:echo",
        }
    }
    first = await start(jobs=declared, pool={"cold_start_s": 1e9})
    request = LaunchJobRequest(job_type="REGISTRY", job_sub_type="ECHO", job_payload={"a": 1})
    session_id = (await first.service.launch(request, caller="alice")).session_id
    await first.stop(grace_s=0)
    second = await start()
    job = await job_in(second.store, session_id, *DONE)
    assert job.status is JobStatus.FAILED
    assert job.info == (
        "No handler is configured for job sub type ECHO in this jobd, so the job cannot run."
    )


async def test_a_python_callable_from_the_config_runs(start: Starter) -> None:
    declared = {
        "ECHO": {
            "job_type": "REGISTRY",
            "handler": "python",
            "callable": "tests.workers.test_pool:echo",
        }
    }
    server = await start(jobs=declared)
    request = LaunchJobRequest(job_type="REGISTRY", job_sub_type="ECHO", job_payload={"a": 1})
    session_id = (await server.service.launch(request, caller="alice")).session_id
    job = await job_in(server.store, session_id, *DONE)
    assert job.status is JobStatus.SUCCEEDED
    assert msgspec.json.decode(job.result) == {"echo": {"a": 1}}


async def test_a_handler_that_returns_no_object_fails(start: Starter) -> None:
    async def wrong(context: JobContext, payload: dict[str, Any]) -> Any:
        return [1, 2]

    server = await start({JobSubType.SEND_EMAIL: wrong})
    job = await job_in(server.store, await launch(server), *DONE)
    assert job.status is JobStatus.FAILED and job.info is not None and "list" in job.info


async def test_a_handler_past_its_timeout_fails(start: Starter, clock: FakeClock) -> None:
    server = await start({JobSubType.SEND_EMAIL: sleeping_handler(3_600)}, pool={"timeout_s": 10})
    session_id = await launch(server)
    await job_in(server.store, session_id, JobStatus.IN_PROGRESS)
    await advance(server, clock, 9)
    await settle()
    assert (await job_in(server.store, session_id, JobStatus.IN_PROGRESS)).attempt == 1
    await advance(server, clock, 1)
    job = await job_in(server.store, session_id, *DONE)
    assert job.status is JobStatus.FAILED
    assert job.info == "Job timed out: its handler ran longer than 10 s and was stopped."


async def test_retry_later_backs_off_then_runs_again(start: Starter, clock: FakeClock) -> None:
    attempts: list[int] = []

    async def flaky(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        attempts.append(context.attempt)
        if context.attempt < 3:
            raise RetryLater("SMTP server busy")
        return {"sent": True}

    server = await start(
        {JobSubType.SEND_EMAIL: flaky}, queue={"backoff_base_s": 10, "poll_interval_s": 1}
    )
    session_id = await launch(server)

    async def attempted(n: int) -> bool:
        job = await server.store.get(session_id)
        return len(attempts) == n and job is not None and job.status is JobStatus.PENDING

    await eventually(lambda: attempted(1), what="the first attempt to be requeued")
    job = await server.store.get(session_id)
    assert job is not None and job.info is not None and "retried after 10 s" in job.info
    await advance(server, clock, 9)
    await settle()
    assert attempts == [1]
    await advance(server, clock, 1)
    await eventually(lambda: attempted(2), what="the second attempt")
    await advance(server, clock, 20)  # second back-off: 2 x base
    job = await job_in(server.store, session_id, *DONE)
    assert (job.status, job.attempt, attempts) == (JobStatus.SUCCEEDED, 3, [1, 2, 3])


async def test_retry_later_gives_up_after_max_attempts(start: Starter, clock: FakeClock) -> None:
    async def always_busy(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        raise RetryLater("busy")

    server = await start(
        {JobSubType.SEND_EMAIL: always_busy},
        pool={"max_attempts": 2},
        queue={"backoff_base_s": 1, "poll_interval_s": 1},
    )
    session_id = await launch(server)
    await eventually(
        lambda: _has_attempt(server, session_id, 1, JobStatus.PENDING), what="first requeue"
    )
    await advance(server, clock, 1)
    job = await job_in(server.store, session_id, *DONE)
    assert job.status is JobStatus.FAILED and job.attempt == 2
    assert job.info == "Job failed, err: busy (gave up after 2 attempts)."


async def _has_attempt(
    server: JobdServer, session_id: str, attempt: int, status: JobStatus
) -> bool:
    job = await server.store.get(session_id)
    return job is not None and job.attempt == attempt and job.status is status


async def test_heartbeats_keep_a_long_job_from_being_rescued(
    start: Starter, clock: FakeClock
) -> None:
    server = await start(
        {JobSubType.SEND_EMAIL: sleeping_handler(100)},
        queue={"lease_s": 30, "rescue_interval_s": 5},
    )
    session_id = await launch(server)
    await job_in(server.store, session_id, JobStatus.IN_PROGRESS)
    for _ in range(20):
        await advance(server, clock, 5)
        await server.store.idle()  # the heartbeat is written before time moves on
    job = await job_in(server.store, session_id, *DONE)
    assert (job.status, job.attempt) == (JobStatus.SUCCEEDED, 1)


async def ghost_claim(server: JobdServer, clock: FakeClock) -> ClaimedJob:
    """Claim the one waiting EMAIL job for a "ghost" worker, leased for 30 s."""
    [ghost] = await server.store.claim(
        Claim(
            job_type=JobType.EMAIL,
            limit=1,
            worker_id="ghost",
            now=clock.now(),
            lease_expires_at=clock.now() + 30,
        )
    )
    return ghost


async def test_a_job_whose_worker_vanished_is_rescued_when_its_lease_expires(
    start: Starter, clock: FakeClock
) -> None:
    # The pool's worker is still provisioning, so the job can only be held by a "ghost"
    # claimant that then dies (as another process's worker would).
    server = await start(pool={"cold_start_s": 100}, queue={"lease_s": 30})
    session_id = await launch(server, JobSubType.EMAIL_WAKE_UP)
    ghost = await ghost_claim(server, clock)
    assert ghost.session_id == session_id
    await advance(server, clock, 29)
    assert await server.rescuer.run_once() == []
    await advance(server, clock, 2)
    rescued = await server.rescuer.run_once()
    assert [(r.session_id, r.status) for r in rescued] == [(session_id, JobStatus.PENDING)]
    await advance(server, clock, 100)  # the worker is ready, the back-off has passed
    job = await job_in(server.store, session_id, *DONE)
    assert (job.status, job.attempt) == (JobStatus.SUCCEEDED, 2)


async def test_a_cancelled_job_whose_worker_vanished_ends_failed_and_is_not_requeued(
    start: Starter, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    # Cancelled while a "ghost" worker runs it (another process, nobody here to interrupt).
    server = await start(pool={"cold_start_s": 100}, queue={"lease_s": 30})
    session_id = await launch(server, JobSubType.EMAIL_WAKE_UP)
    ghost = await ghost_claim(server, clock)
    assert await server.store.start(Lease(session_id, ghost.attempt), "running", clock.now())
    _, running = await server.service.cancel(session_id, None, "alice")
    assert running
    await advance(server, clock, 31)
    rescued = await server.rescuer.run_once()
    assert [(r.session_id, r.status) for r in rescued] == [(session_id, JobStatus.FAILED)]
    assert "1 requeued" not in caplog.text and "0 requeued, 1 ended FAILED" in caplog.text
    await advance(server, clock, 100)  # the pool's worker is ready: nothing for it to run
    job = await server.store.get(session_id)
    assert job is not None and (job.status, job.attempt) == (JobStatus.FAILED, 1)
    assert job.info == (
        "Cancelled by alice. It was running; anything it had launched was discarded."
    )


async def test_jobs_left_running_by_a_dead_process_are_requeued_at_start(
    tmp_path: Path, start: Starter, clock: FakeClock
) -> None:
    from provena_jobd.queue.sqlite import SqliteStore

    # A "previous process": a job is launched and claimed, then the process dies.
    first = await start(pool={"cold_start_s": 1_000})
    session_id = await launch(first, JobSubType.EMAIL_WAKE_UP)
    await first.stop(grace_s=0)
    dead = SqliteStore(tmp_path / "jobd.db")
    await dead.open()
    held = await dead.claim(
        Claim(
            job_type=JobType.EMAIL,
            limit=1,
            worker_id="dead",
            now=clock.now(),
            lease_expires_at=clock.now() + 3_600,
        )
    )
    assert [h.session_id for h in held] == [session_id]
    await dead.close()
    # The restart requeues it at once, long before the lease would expire; the lost run is
    # not counted against the job (it ran beside others: see workers/isolation.py).
    second = await start()
    job = await job_in(second.store, session_id, *DONE)
    assert (job.status, job.attempt) == (JobStatus.SUCCEEDED, 1)


async def test_graceful_stop_requeues_unfinished_jobs_without_using_an_attempt(
    start: Starter, clock: FakeClock
) -> None:
    handler, _, _ = blocking_handler()
    server = await start({JobSubType.SEND_EMAIL: handler})
    session_id = await launch(server)
    await job_in(server.store, session_id, JobStatus.IN_PROGRESS)
    stopping = asyncio.create_task(server.stop(grace_s=5))
    await settle()
    await advance(server, clock, 5)
    await stopping
    reopened = await start({JobSubType.SEND_EMAIL: sleeping_handler(0)})
    job = await job_in(reopened.store, session_id, *DONE)
    assert (job.status, job.attempt) == (JobStatus.SUCCEEDED, 1)


async def test_graceful_stop_lets_a_job_finish_within_the_grace_period(
    start: Starter, clock: FakeClock
) -> None:
    server = await start({JobSubType.SEND_EMAIL: sleeping_handler(3)})
    session_id = await launch(server)
    await job_in(server.store, session_id, JobStatus.IN_PROGRESS)
    stopping = asyncio.create_task(server.stop(grace_s=10))
    await settle()
    await advance(server, clock, 3)
    await stopping
    reopened = await start()
    job = await reopened.store.get(session_id)
    assert job is not None and (job.status, job.attempt) == (JobStatus.SUCCEEDED, 1)


async def test_pool_state_reports_workers_by_state(start: Starter, clock: FakeClock) -> None:
    handler, release, _ = blocking_handler()
    server = await start({JobSubType.SEND_EMAIL: handler}, pool={"max_workers": 2}, **{})
    await launch(server)

    async def busy() -> bool:
        return (await workers(server))["busy"] == 1

    await eventually(busy, what="a busy worker")
    snapshot = await server.pools[JobType.EMAIL].snapshot()
    assert snapshot.running_jobs == 1 and snapshot.settings.max_workers == 2
    assert WorkerState.BUSY.value in snapshot.workers
    release.set()


async def test_jobs_of_a_job_type_removed_from_the_config_fail_at_restart(
    start: Starter,
) -> None:
    declared = {
        "NOTIFY": {
            "job_type": "CUSTOM",
            "handler": "python",
            "callable": "tests.workers.test_pool:echo",
        }
    }
    first = await start(jobs=declared, pool={"cold_start_s": 1e9})
    request = LaunchJobRequest(job_type="CUSTOM", job_sub_type="NOTIFY", job_payload={})
    session_id = (await first.service.launch(request, caller="alice")).session_id
    await first.stop(grace_s=0)
    second = await start()
    job = await job_in(second.store, session_id, *DONE)
    assert job.info == (
        "Job type CUSTOM is not configured in this jobd any more, so nothing can run this job."
    )


async def held_ahead(server: JobdServer, count: int) -> None:
    """Wait until the EMAIL pool holds `count` jobs claimed ahead (DEQUEUED, not started)."""

    async def ahead() -> bool:
        pool = server.pools[JobType.EMAIL]
        assert isinstance(pool, Pool)
        return pool.claimed_ahead == count

    await eventually(ahead, what=f"{count} jobs claimed ahead")


async def test_a_job_claimed_ahead_and_then_cancelled_never_starts(start: Starter) -> None:
    handler, release, started = blocking_handler()
    server = await start({JobSubType.SEND_EMAIL: handler}, pool={"max_workers": 1})
    first, second, third = [await launch(server) for _ in range(3)]
    await job_in(server.store, first, JobStatus.IN_PROGRESS)
    await held_ahead(server, 2)
    assert (await job_in(server.store, second, JobStatus.DEQUEUED)).status is JobStatus.DEQUEUED

    job, running = await server.service.cancel(second, None, "alice")
    assert (job.status, running) == (JobStatus.FAILED, False)
    release.set()
    assert (await job_in(server.store, third, *DONE)).status is JobStatus.SUCCEEDED
    assert started == [first, third]
    cancelled = await server.store.get(second)
    assert cancelled is not None and cancelled.status is JobStatus.FAILED
    assert cancelled.started_timestamp is None


async def test_graceful_stop_returns_jobs_claimed_ahead_without_using_an_attempt(
    start: Starter, clock: FakeClock
) -> None:
    handler, release, _ = blocking_handler()
    server = await start({JobSubType.SEND_EMAIL: handler}, pool={"max_workers": 1})
    first, *waiting = [await launch(server) for _ in range(3)]
    await job_in(server.store, first, JobStatus.IN_PROGRESS)
    await held_ahead(server, 2)
    stopping = asyncio.create_task(server.stop(grace_s=5))
    await settle()
    release.set()
    await stopping
    # Requeued with the attempt refunded; left DEQUEUED, a restart would count it as used.
    reopened = await start({JobSubType.SEND_EMAIL: sleeping_handler(0)})
    for session_id in waiting:
        job = await job_in(reopened.store, session_id, *DONE)
        assert (job.status, job.attempt) == (JobStatus.SUCCEEDED, 1)
