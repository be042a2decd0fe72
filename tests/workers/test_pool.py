"""Worker pools on real SQLite, driven by a fake clock: cold start, scaling, idle shutdown,
handlers, failures, timeouts and pool state."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import pytest

from provena_jobd import server as server_module
from provena_jobd.clock import FakeClock
from provena_jobd.models import JobStatus, JobSubType, JobType, LaunchJobRequest
from provena_jobd.workers.handlers import JobContext
from provena_jobd.workers.pool_workers import WorkerState
from tests.helpers import eventually, job_in, settle
from tests.workers.pool_helpers import (
    DONE,
    Starter,
    advance,
    blocking_handler,
    launch,
    sleeping_handler,
    workers,
)


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

    # The two others wait: PENDING, claimed ahead, or on their way between the two.
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


# A job type of the tests' own: a config without it is one from which it was removed.
CUSTOM_TYPE = {
    "NOTIFY": {
        "job_type": "CUSTOM",
        "handler": "python",
        "callable": "tests.workers.test_pool:echo",
    }
}


async def test_jobs_of_a_job_type_removed_from_the_config_fail_at_restart(
    start: Starter,
) -> None:
    first = await start(jobs=CUSTOM_TYPE, pool={"cold_start_s": 1e9})
    request = LaunchJobRequest(job_type="CUSTOM", job_sub_type="NOTIFY", job_payload={})
    session_id = (await first.service.launch(request, caller="alice")).session_id
    await first.stop(grace_s=0)
    second = await start()
    job = await job_in(second.store, session_id, *DONE)
    assert job.info == (
        "Job type CUSTOM is not configured in this jobd any more, so nothing can run this job."
    )


async def test_a_node_without_a_job_type_leaves_that_type_s_jobs_to_the_nodes_that_have_it(
    fresh_database: str, start: Starter, caplog: pytest.LogCaptureFixture
) -> None:
    # The database first, so that it is dropped only after the servers stopped.
    # A node of the cluster that runs CUSTOM (slowly: its workers are still starting) ...
    first = await start(
        jobs=CUSTOM_TYPE, pool={"cold_start_s": 1e9}, storage={"db": fresh_database}
    )
    request = LaunchJobRequest(job_type="CUSTOM", job_sub_type="NOTIFY", job_payload={})
    session_id = (await first.service.launch(request, caller="alice")).session_id
    # ... and one started with a config that lacks it: a warning, and nothing changes.
    caplog.set_level(logging.WARNING, logger=server_module.log.name)
    second = await start(storage={"db": fresh_database})
    await second.store.idle()
    job = await second.store.get(session_id)
    assert job is not None and job.status is JobStatus.PENDING
    [warning] = [r for r in caplog.records if getattr(r, "action", "") == "unknown_job_types"]
    assert "CUSTOM (1)" in warning.getMessage()
