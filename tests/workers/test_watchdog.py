"""A handler that blocks the event loop is named in the log (issue 18, item 11)."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from provena_jobd.models import JobStatus
from provena_jobd.workers.handlers import JobContext
from tests.helpers import job_in
from tests.workers.pool_helpers import DONE, Starter, launch


async def test_a_handler_that_blocks_the_loop_is_named_in_a_warning(
    start: Starter, caplog: pytest.LogCaptureFixture
) -> None:
    async def blocking(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        time.sleep(0.3)  # noqa: ASYNC251 - the mistake under test: a blocking sleep
        return {}

    server = await start({"EMAIL_WAKE_UP": blocking})
    server.runner.watchdog.threshold_s = 0.1
    with caplog.at_level(logging.WARNING, logger="provena_jobd.workers.watchdog"):
        session_id = await launch(server, "EMAIL_WAKE_UP")  # type: ignore[arg-type]
        job = await job_in(server.store, session_id, *DONE)
    assert job.status is JobStatus.SUCCEEDED
    warnings = [r.getMessage() for r in caplog.records if r.name.endswith("watchdog")]
    assert len(warnings) == 1, warnings
    assert f"the handler of job {session_id} (job sub type EMAIL_WAKE_UP)" in warnings[0]
    assert "asyncio.to_thread" in warnings[0]


async def test_handlers_that_await_raise_no_warning(
    start: Starter, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start()
    server.runner.watchdog.threshold_s = 0.1
    with caplog.at_level(logging.WARNING, logger="provena_jobd.workers.watchdog"):
        for _ in range(5):
            await job_in(server.store, await launch(server, "EMAIL_WAKE_UP"), *DONE)  # type: ignore[arg-type]
    # A starved machine can stall the loop for a moment outside any task; what matters is
    # that no handler that awaits is ever blamed.
    warnings = [r.getMessage() for r in caplog.records if r.name.endswith("watchdog")]
    assert [w for w in warnings if "handler of job" in w] == []
