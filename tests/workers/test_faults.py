"""Handlers that misbehave: whatever they raise, swallow or return, the attempt ends at once,
FAILED with the real error, and the pool keeps running other jobs (issue 18, items 1-3)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import pytest

from provena_jobd.clock import FakeClock
from provena_jobd.errors import RetryLater
from provena_jobd.models import JobStatus
from provena_jobd.server import JobdServer
from provena_jobd.workers.handler_watch import CANCEL_GRACE_S
from provena_jobd.workers.handlers import Handler, JobContext
from provena_jobd.workers.pool import Pool
from tests.helpers import eventually, job_in, settle
from tests.workers.pool_helpers import (
    DONE,
    Starter,
    advance,
    holds,
    launch,
    sleeping_handler,
    stubborn,
)


class Poison(BaseException):
    """A custom BaseException, as some libraries raise."""


def raising(error: BaseException) -> Handler:
    """A handler that raises `error` at once (the first time only)."""
    raised: list[bool] = []

    async def handler(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        if not raised:
            raised.append(True)
            raise error
        return {}

    return handler


async def test_sys_exit_in_a_handler_fails_its_job_and_jobd_keeps_running(
    start: Starter,
) -> None:
    server = await start({"SEND_EMAIL": raising(SystemExit(3)), "EMAIL_WAKE_UP": raising(Poison())})
    job = await job_in(server.store, await launch(server), *DONE)
    assert (job.status, job.attempt) == (JobStatus.FAILED, 1)
    assert job.info == "Callback function raised unhandled exception. Error: SystemExit(3)."
    # The pool still runs jobs: the next one succeeds.
    again = await job_in(server.store, await launch(server), *DONE)
    assert again.status is JobStatus.SUCCEEDED


async def test_keyboard_interrupt_in_a_handler_fails_only_its_job(start: Starter) -> None:
    server = await start({"SEND_EMAIL": raising(KeyboardInterrupt())})
    job = await job_in(server.store, await launch(server), *DONE)
    assert job.status is JobStatus.FAILED
    assert job.info == "Callback function raised unhandled exception. Error: KeyboardInterrupt()."
    assert (await job_in(server.store, await launch(server), *DONE)).status is JobStatus.SUCCEEDED


async def test_a_custom_base_exception_fails_the_job_at_once_without_retries(
    start: Starter,
) -> None:
    server = await start({"SEND_EMAIL": raising(Poison("the library gave up"))})
    job = await job_in(server.store, await launch(server), *DONE)
    assert (job.status, job.attempt) == (JobStatus.FAILED, 1)
    assert job.info == (
        "Callback function raised unhandled exception. Error: Poison('the library gave up')."
    )


async def test_a_result_json_cannot_encode_fails_the_job_with_the_reason(start: Starter) -> None:
    async def unencodable(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        return {"when": object()}

    server = await start({"SEND_EMAIL": unencodable, "EMAIL_WAKE_UP": unencodable})
    job = await job_in(server.store, await launch(server, "EMAIL_WAKE_UP"), *DONE)  # type: ignore[arg-type]
    assert (job.status, job.attempt) == (JobStatus.FAILED, 1)
    assert job.info is not None
    assert job.info.startswith("Job failed, err: the handler's result cannot be sent as JSON")


async def _timed_out_stubborn(start: Starter, clock: FakeClock) -> tuple[JobdServer, str]:
    """A running job whose handler has just swallowed its timeout's stop (`timeout_s` 10)."""
    swallowed: list[str] = []
    server = await start({"SEND_EMAIL": stubborn(swallowed)}, pool={"timeout_s": 10})
    session_id = await launch(server)
    await job_in(server.store, session_id, JobStatus.IN_PROGRESS)
    await advance(server, clock, 10)
    await eventually(lambda: holds(swallowed == [session_id]), what="the stop to be swallowed")
    return server, session_id


async def test_a_handler_that_swallows_cancellation_still_times_out(
    start: Starter, clock: FakeClock
) -> None:
    server, session_id = await _timed_out_stubborn(start, clock)
    await advance(server, clock, CANCEL_GRACE_S)
    job = await job_in(server.store, session_id, *DONE)
    assert (job.status, job.attempt) == (JobStatus.FAILED, 1)
    assert job.info == (
        "Job timed out: its handler ran longer than 10 s and was stopped. "
        "It ignored the stop and was abandoned."
    )


async def test_a_cancelled_job_never_ends_succeeded_even_if_its_handler_ignores_it(
    start: Starter, clock: FakeClock
) -> None:
    swallowed: list[str] = []
    server = await start({"SEND_EMAIL": stubborn(swallowed, result={"sent": True})})
    session_id = await launch(server)
    await job_in(server.store, session_id, JobStatus.IN_PROGRESS)
    await server.service.cancel(session_id, None, by="admin")
    job = await job_in(server.store, session_id, *DONE)
    assert swallowed == [session_id]
    assert (job.status, job.info) == (
        JobStatus.FAILED,
        "Cancelled by admin. It was running; anything it had launched was discarded.",
    )


async def test_a_cancel_that_a_handler_keeps_ignoring_ends_the_job_after_the_grace(
    start: Starter, clock: FakeClock
) -> None:
    swallowed: list[str] = []
    server = await start({"SEND_EMAIL": stubborn(swallowed)})
    session_id = await launch(server)
    await job_in(server.store, session_id, JobStatus.IN_PROGRESS)
    await server.service.cancel(session_id, None, by="admin")
    await settle()
    await advance(server, clock, CANCEL_GRACE_S)
    job = await job_in(server.store, session_id, *DONE)
    assert job.status is JobStatus.FAILED and job.info is not None
    assert job.info.startswith("Cancelled by admin.")


async def test_a_cancel_that_lands_after_the_handler_returned_still_wins(
    start: Starter,
) -> None:
    # The cancel is committed between the handler's return and the runner's finish.
    returned = asyncio.Event()
    proceed = asyncio.Event()

    async def quick(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        return {"sent": True}

    server = await start({"SEND_EMAIL": quick})
    original_finish = server.store.finish

    async def finish_after_cancel(finish: Any) -> bool:
        returned.set()
        await proceed.wait()
        return await original_finish(finish)

    server.store.finish = finish_after_cancel  # type: ignore[method-assign]
    session_id = await launch(server)
    await asyncio.wait_for(returned.wait(), 5)
    await server.service.cancel(session_id, None, by="admin")
    assert server.cancellations.pending == 1  # kept for the runner, until its attempt ends
    proceed.set()
    job = await job_in(server.store, session_id, *DONE)
    assert job.status is JobStatus.FAILED and job.info is not None
    assert job.info.startswith("Cancelled by admin.")
    await eventually(lambda: holds(server.cancellations.pending == 0), what="no cancel kept")


async def test_graceful_stop_requeues_a_job_whose_handler_ignores_the_stop(
    start: Starter, clock: FakeClock
) -> None:
    swallowed: list[str] = []
    server = await start({"SEND_EMAIL": stubborn(swallowed)})
    session_id = await launch(server)
    await job_in(server.store, session_id, JobStatus.IN_PROGRESS)
    stopping = asyncio.create_task(server.stop(grace_s=1))
    await settle()
    await advance(server, clock, 1)
    await settle()
    await advance(server, clock, CANCEL_GRACE_S)
    await asyncio.wait_for(stopping, 5)
    reopened = await start({"SEND_EMAIL": sleeping_handler(0)})
    job = await job_in(reopened.store, session_id, *DONE)
    assert (job.status, job.attempt) == (JobStatus.SUCCEEDED, 1)


async def test_a_cancelled_job_caught_by_a_shutdown_is_not_run_again(
    start: Starter, clock: FakeClock
) -> None:
    # The cancel is recorded and the handler told to stop, but it ignores the stop, and
    # jobd shuts down within the cancel's grace: the shutdown's requeue must not put it back.
    swallowed: list[str] = []
    server = await start({"SEND_EMAIL": stubborn(swallowed)})
    session_id = await launch(server)
    await job_in(server.store, session_id, JobStatus.IN_PROGRESS)
    await server.service.cancel(session_id, None, by="admin")
    await eventually(lambda: holds(swallowed == [session_id]), what="the stop to be swallowed")
    stopping = asyncio.create_task(server.stop(grace_s=1))
    await settle()
    await advance(server, clock, 1)
    await asyncio.wait_for(stopping, 5)
    ran_again: list[str] = []

    async def counting(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        ran_again.append(context.session_id)
        return {}

    reopened = await start({"SEND_EMAIL": counting})
    job = await job_in(reopened.store, session_id, *DONE)
    assert (job.status, job.attempt) == (JobStatus.FAILED, 1)
    assert job.info == (
        "Cancelled by admin. It was running; anything it had launched was discarded."
    )
    assert job.finished_timestamp is not None
    other = await launch(reopened)
    assert (await job_in(reopened.store, other, *DONE)).status is JobStatus.SUCCEEDED
    # The pool ran the next job, not the cancelled one: its handler was called once only.
    assert ran_again == [other] and swallowed == [session_id]


async def test_a_retry_of_a_job_cancelled_through_another_node_ends_it_instead(
    start: Starter, clock: FakeClock
) -> None:
    # On PostgreSQL a cancel that arrives at another node is only recorded in the database:
    # the runner here is not told, and its handler asks for a retry.
    calls: list[str] = []

    async def retrying(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        calls.append(context.session_id)
        await server.store.cancel(context.session_id, "Cancelled by bob.", clock.now())
        raise RetryLater("the mail server is busy")

    server = await start({"SEND_EMAIL": retrying})
    session_id = await launch(server)
    job = await job_in(server.store, session_id, *DONE)
    assert (job.status, job.attempt) == (JobStatus.FAILED, 1)
    assert job.info == "Cancelled by bob. It was running; anything it had launched was discarded."
    await advance(server, clock, 10)  # past any back-off: nothing runs it again
    await settle()
    assert calls == [session_id]
    [attempt] = await server.store.attempts(session_id)
    assert attempt.outcome == "cancelled"


async def test_a_cancel_while_a_timed_out_handler_is_being_stopped_ends_the_job_once(
    start: Starter, clock: FakeClock
) -> None:
    # Not mistaken for a shutdown (which would put the job back in the queue).
    server, session_id = await _timed_out_stubborn(start, clock)
    await server.service.cancel(session_id, None, by="admin")
    await server.service.cancel(session_id, None, by="admin")
    await advance(server, clock, CANCEL_GRACE_S)
    job = await job_in(server.store, session_id, *DONE)
    assert (job.status, job.attempt) == (JobStatus.FAILED, 1)
    assert job.info is not None and job.info.startswith("Job timed out")
    await eventually(lambda: holds(server.cancellations.pending == 0), what="no cancel kept")


async def _draining(server: JobdServer) -> None:
    """Return once the EMAIL pool's drain has stopped claiming and waits for its jobs."""
    pool = server.pools["EMAIL"]
    assert isinstance(pool, Pool)

    async def supervisor_gone() -> bool:
        return pool._task is not None and pool._task.done()

    await eventually(supervisor_gone, what="the drain to begin")
    await settle()


async def test_a_shutdown_waits_for_an_abandoned_handler_only_until_its_attempt_ends(
    start: Starter, clock: FakeClock
) -> None:
    server, session_id = await _timed_out_stubborn(start, clock)
    stopping = asyncio.create_task(server.stop(grace_s=60))
    await _draining(server)  # the drain waits for the job, in its 60 s grace
    await advance(server, clock, CANCEL_GRACE_S)  # abandoned: its attempt ends FAILED
    await asyncio.wait_for(stopping, 5)  # without waiting out the grace
    reopened = await start()
    job = await job_in(reopened.store, session_id, *DONE)
    assert (job.status, job.attempt) == (JobStatus.FAILED, 1)


async def test_a_handler_stopped_by_a_shutdown_is_not_timed_out_or_abandoned_after_it(
    start: Starter, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    let_go = asyncio.Event()

    async def deaf(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        while not let_go.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await context.clock.sleep(3_600)
        return {}

    server = await start({"SEND_EMAIL": deaf}, pool={"timeout_s": 3})
    session_id = await launch(server)
    await job_in(server.store, session_id, JobStatus.IN_PROGRESS)
    stopping = asyncio.create_task(server.stop(grace_s=0))
    await _draining(server)
    await advance(server, clock, CANCEL_GRACE_S)  # left running: its job goes back
    await asyncio.wait_for(stopping, 5)
    caplog.clear()
    await clock.advance(10)  # past its timeout and a stop's grace
    await settle()
    let_go.set()
    await clock.advance(3_600)
    await settle()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    reopened = await start({"SEND_EMAIL": sleeping_handler(0)})
    job = await job_in(reopened.store, session_id, *DONE)
    assert (job.status, job.attempt) == (JobStatus.SUCCEEDED, 1)
