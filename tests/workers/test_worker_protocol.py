"""The worker protocol (`/jobs/worker/*`) against a real jobd: claims, fencing by attempt,
long polls, and a worker that stops heartbeating losing its job to another."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from provena_jobd.cli.serve import shutdown_message
from provena_jobd.client import BadRequest, Conflict, NotFound, Unauthorized, ValidationFailed
from provena_jobd.identity import hash_token
from provena_jobd.models import INFO_DEQUEUED, INFO_IN_PROGRESS, JobStatus
from provena_jobd.testing import JobdServerFactory, JobdTestServer
from provena_jobd.worker_client import WorkerClient
from provena_jobd.worker_protocol import ClaimedWork
from provena_jobd.workers.handlers import JobContext
from tests.helpers import eventually

REGISTRY = "REGISTRY"
WAKE = ("REGISTRY", "REGISTRY_WAKE_UP")
LEASE_S = 0.3


@pytest.fixture
async def jobd(jobd_server_factory: JobdServerFactory) -> JobdTestServer:
    """A jobd whose REGISTRY jobs are run by outside workers, with short leases."""
    return await jobd_server_factory(
        pool={REGISTRY: {"external": True}},
        queue={"lease_s": LEASE_S, "rescue_interval_s": 0.05, "backoff_base_s": 0.0},
    )


@pytest.fixture
async def workers(jobd: JobdTestServer) -> AsyncIterator[tuple[WorkerClient, WorkerClient]]:
    """Two workers of the same jobd."""
    async with (
        WorkerClient(jobd.url, worker_id="a") as first,
        WorkerClient(jobd.url, worker_id="b") as second,
    ):
        yield first, second


async def test_a_claimed_job_runs_to_its_end_under_its_attempt(
    jobd: JobdTestServer, workers: tuple[WorkerClient, WorkerClient]
) -> None:
    worker, _ = workers
    launched = await jobd.client.launch(*WAKE, {"note": "x"}, username="alice")
    [work] = await worker.claim(REGISTRY, n=5)
    assert (work.session_id, work.attempt, work.username) == (launched.session_id, 1, "alice")
    assert (work.job_type, work.job_sub_type, work.payload) == (*WAKE, {"note": "x"})
    assert worker.lease_s == LEASE_S
    job = await jobd.client.fetch(work.session_id, admin=True)
    assert (job.status, job.info) == (JobStatus.DEQUEUED, INFO_DEQUEUED)

    job = await worker.start(work)
    assert (job.status, job.info) == (JobStatus.IN_PROGRESS, INFO_IN_PROGRESS)
    lease = await worker.heartbeat(work)
    assert lease.lease_expires_at > time.time()
    # Kept to the millisecond, as every epoch time jobd shows (the README says so).
    for shown in (lease.lease_expires_at, work.lease_expires_at):
        assert round(shown, 3) == shown
    job = await worker.progress(work, "half way", 0.5)
    assert job.info == "half way"
    job = await worker.finish(work, "SUCCEEDED", result={})
    assert job.status is JobStatus.SUCCEEDED

    # The attempt is over: every further call is refused and changes nothing.
    with pytest.raises(Conflict, match="Attempt 1 no longer holds job"):
        await worker.finish(work, "FAILED", info="late")
    with pytest.raises(Conflict):
        await worker.heartbeat(work)
    with pytest.raises(Conflict):
        await worker.release(work)
    assert (await jobd.client.fetch(work.session_id, admin=True)).status is JobStatus.SUCCEEDED


async def test_a_worker_that_stops_heartbeating_loses_its_job_to_another(
    jobd: JobdTestServer, workers: tuple[WorkerClient, WorkerClient]
) -> None:
    silent, other = workers
    launched = await jobd.client.launch(*WAKE, {})
    [stale] = await silent.claim(REGISTRY)
    await silent.start(stale)
    # Its lease runs out; the rescuer requeues the job and the other worker gets attempt 2.
    [fresh] = await other.claim(REGISTRY, wait_s=5)
    assert (fresh.session_id, fresh.attempt) == (launched.session_id, 2)
    await other.start(fresh)
    for call in (silent.heartbeat(stale), silent.finish(stale, "SUCCEEDED", result={})):
        with pytest.raises(Conflict, match="it is IN_PROGRESS on attempt 2"):
            await call
    await other.finish(fresh, "FAILED", info="done by b")
    job = await jobd.client.fetch(launched.session_id)
    assert (job.status, job.info, job.attempt) == (JobStatus.FAILED, "done by b", 2)


async def test_heartbeats_keep_a_job_past_its_lease(
    jobd: JobdTestServer, workers: tuple[WorkerClient, WorkerClient]
) -> None:
    worker, other = workers
    await jobd.client.launch(*WAKE, {})
    [work] = await worker.claim(REGISTRY)
    deadline = time.monotonic() + 3 * LEASE_S
    while time.monotonic() < deadline:
        await worker.heartbeat(work)
        assert await other.claim(REGISTRY) == []
        await asyncio.sleep(LEASE_S / 4)
    assert (await worker.finish(work, "SUCCEEDED", result={})).attempt == 1


async def test_a_released_job_goes_to_the_next_worker_on_a_new_attempt(
    jobd: JobdTestServer, workers: tuple[WorkerClient, WorkerClient]
) -> None:
    first, second = workers
    launched = await jobd.client.launch(*WAKE, {})
    [work] = await first.claim(REGISTRY)
    job = await first.release(work, info="not mine")
    assert (job.status, job.info) == (JobStatus.PENDING, "not mine")
    [again] = await second.claim(REGISTRY)
    assert (again.session_id, again.attempt) == (launched.session_id, 2)
    with pytest.raises(Conflict):
        await first.start(work)
    await second.start(again)


async def test_a_long_poll_answers_as_soon_as_a_job_arrives(
    jobd: JobdTestServer, workers: tuple[WorkerClient, WorkerClient]
) -> None:
    worker, _ = workers
    claim = asyncio.create_task(worker.claim(REGISTRY, wait_s=30))
    await asyncio.sleep(0.05)
    assert not claim.done()
    launched_at = time.monotonic()
    launched = await jobd.client.launch(*WAKE, {})
    [work] = await asyncio.wait_for(claim, 5)
    assert work.session_id == launched.session_id
    assert time.monotonic() - launched_at < 0.4  # well inside the poll interval of 1 s


async def test_a_long_poll_with_nothing_to_do_answers_empty_after_wait_s(
    workers: tuple[WorkerClient, WorkerClient],
) -> None:
    worker, _ = workers
    started = time.monotonic()
    assert await worker.claim(REGISTRY, wait_s=0.2) == []
    assert 0.2 <= time.monotonic() - started < 2


async def test_a_result_that_does_not_fit_the_sub_type_fails_the_job(
    jobd: JobdTestServer, workers: tuple[WorkerClient, WorkerClient]
) -> None:
    worker, _ = workers
    await jobd.client.launch("REGISTRY", "REGISTER_CREATE_ACTIVITY", _create_activity())
    [work] = await worker.claim(REGISTRY)
    await worker.start(work)
    job = await worker.finish(work, "SUCCEEDED", result={"unexpected": 1})
    assert job.status is JobStatus.FAILED
    assert job.info is not None and "does not fit REGISTER_CREATE_ACTIVITY" in job.info


async def test_bad_calls_are_refused_with_a_detail_and_change_nothing(
    jobd: JobdTestServer, workers: tuple[WorkerClient, WorkerClient]
) -> None:
    worker, _ = workers
    with pytest.raises(BadRequest, match="Job type EMAIL is run inside jobd"):
        await worker.claim("EMAIL")
    with pytest.raises(BadRequest, match="Unknown job type NOPE"):
        await worker.claim("NOPE")
    with pytest.raises(ValidationFailed):
        await worker.claim(REGISTRY, n=0)
    with pytest.raises(ValidationFailed):
        await worker.claim(REGISTRY, wait_s=61)
    launched = await jobd.client.launch(*WAKE, {})
    [work] = await worker.claim(REGISTRY)
    with pytest.raises(Conflict):
        await worker.heartbeat(msgspec.structs.replace(work, attempt=7))
    with pytest.raises(NotFound):
        await worker.heartbeat(msgspec.structs.replace(work, session_id="missing"))
    with pytest.raises(ValidationFailed):  # found by the fuzzer: once a 500 from SQLite
        await worker.heartbeat(msgspec.structs.replace(work, attempt=2**64))
    job = await jobd.client.fetch(launched.session_id)
    assert (job.status, job.attempt) == (JobStatus.DEQUEUED, 1)


async def test_the_worker_role_is_needed(jobd_server_factory: JobdServerFactory) -> None:
    tokens = [
        {"sha256": hash_token("reader"), "user": "r", "roles": ["job-service-read"]},
        {"sha256": hash_token("worker"), "user": "w", "roles": ["job-service-worker"]},
    ]
    jobd = await jobd_server_factory(
        pool={REGISTRY: {"external": True}}, auth={"mode": "token", "tokens": tokens}
    )
    async with WorkerClient(jobd.url, "reader") as reader, WorkerClient(jobd.url, "worker") as w:
        with pytest.raises(Unauthorized):
            await reader.claim(REGISTRY)
        assert await w.claim(REGISTRY) == []


def _create_activity() -> dict[str, object]:
    return {
        "created_item_id": "10378.1/1",
        "created_item_subtype": "MODEL_RUN",
        "linked_person_id": "10378.1/2",
    }


async def test_cancelling_a_job_an_outside_worker_runs_ends_it_and_fences_the_worker(
    jobd: JobdTestServer, workers: tuple[WorkerClient, WorkerClient]
) -> None:
    worker, _ = workers
    launched = await jobd.client.launch(*WAKE, {})
    [work] = await worker.claim(REGISTRY)
    await worker.start(work)
    job = await jobd.client.cancel(launched.session_id, admin=True)
    assert job.status is JobStatus.FAILED
    assert job.info is not None and job.info.startswith("Cancelled by local.")
    with pytest.raises(Conflict, match="it is FAILED"):
        await worker.finish(work, "SUCCEEDED", result={})
    assert (await jobd.client.fetch(launched.session_id)).info == job.info


async def test_a_worker_cannot_start_finish_or_release_a_job_jobd_runs_itself(
    jobd_server_factory: JobdServerFactory,
) -> None:
    """jobd's own pools may start a job they claimed without waiting for the start's commit,
    trusting that nothing but their own writes touches it: the worker routes must refuse it."""
    release = asyncio.Event()
    started: list[str] = []

    async def blocking(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        started.append(context.session_id)
        await release.wait()
        return {}

    jobd = await jobd_server_factory(
        pool={REGISTRY: {"external": True}, "EMAIL": {"max_workers": 1}},
        handlers={"EMAIL_WAKE_UP": blocking},
    )
    first = await jobd.client.launch("EMAIL", "EMAIL_WAKE_UP", {}, username="alice")
    ahead = await jobd.client.launch("EMAIL", "EMAIL_WAKE_UP", {}, username="alice")

    async def claimed_ahead() -> bool:  # the first runs, the second waits DEQUEUED
        job = await jobd.client.fetch(ahead.session_id, admin=True)
        return job.status is JobStatus.DEQUEUED

    await eventually(claimed_ahead, what="the second job claimed ahead")
    held = await jobd.client.fetch(ahead.session_id, admin=True)
    assert held.status is JobStatus.DEQUEUED and started == [first.session_id]
    work = ClaimedWork(
        session_id=ahead.session_id,
        attempt=held.attempt,
        max_attempts=3,
        created_timestamp=held.created_timestamp,
        username="alice",
        batch_id=None,
        job_type="EMAIL",
        job_sub_type="EMAIL_WAKE_UP",
        payload={},
        lease_expires_at=time.time() + 30,
    )
    async with WorkerClient(jobd.url, worker_id="intruder") as intruder:
        with pytest.raises(Conflict):
            await intruder.release(work)
        with pytest.raises(Conflict):
            await intruder.start(work)
        with pytest.raises(Conflict):
            await intruder.finish(work, "SUCCEEDED", result={})
    unchanged = await jobd.client.fetch(ahead.session_id, admin=True)
    assert (unchanged.status, unchanged.attempt) == (JobStatus.DEQUEUED, held.attempt)
    release.set()

    async def both_done() -> bool:
        jobs = [await jobd.client.fetch(j.session_id, admin=True) for j in (first, ahead)]
        return all(job.status is JobStatus.SUCCEEDED for job in jobs)

    await eventually(both_done, what="both jobs to succeed")
    assert started == [first.session_id, ahead.session_id]  # each ran once


async def test_a_shutdown_says_outside_workers_keep_their_jobs_and_waits_for_none_of_them(
    jobd: JobdTestServer, workers: tuple[WorkerClient, WorkerClient]
) -> None:
    worker, _ = workers
    await jobd.client.launch(*WAKE, {})
    [work] = await worker.claim(REGISTRY, n=1)
    await worker.start(work)
    server = jobd.server
    assert (server.running_jobs(), server.held_outside()) == (1, 1)
    outside = server.held_outside()
    said = shutdown_message(server.running_jobs() - outside, outside, server.settings)
    # Not "waiting up to 10 s for 1 running job ... return to PENDING": neither happens.
    assert said == (
        "jobd: shutting down: 1 job held by outside workers stays theirs while its lease lasts"
    )


async def test_a_job_for_outside_workers_says_it_waits_for_one_not_for_a_cold_start(
    jobd: JobdTestServer, workers: tuple[WorkerClient, WorkerClient]
) -> None:
    worker, _ = workers
    first = await jobd.client.launch(*WAKE, {})
    waiting = (await jobd.client.fetch_response(first.session_id)).waiting
    assert waiting is not None and waiting.reason == "no_worker"  # jobd starts none itself
    [work] = await worker.claim(REGISTRY)
    await worker.start(work)
    second = await jobd.client.launch(*WAKE, {})
    waiting = (await jobd.client.fetch_response(second.session_id)).waiting
    assert waiting is not None
    assert (waiting.reason, waiting.message) == (
        "workers_busy",
        "The 1 outside REGISTRY worker is busy; it is next.",
    )
