"""The log lines that say a worker started or stopped name it: its job type and worker id in
the text, and as fields of `--log-format json` (`action`, `job_type`, `worker_id`; a worker
process's `pid` and, once it exited, `exit_code`)."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from typing import Any

import pytest

from provena_jobd.clock import FakeClock
from provena_jobd.logs import JsonFormatter
from provena_jobd.models import JobStatus, JobSubType
from provena_jobd.worker_protocol import ClaimRequest
from provena_jobd.workers import pool, process_output, process_pool
from provena_jobd.workers.start_backoff import HEALTHY_AFTER_S
from tests.helpers import eventually, job_in
from tests.workers.pool_helpers import MakePool, Starter, advance, launch, workers

# A worker process that exits 0 when told to stop (SIGTERM), as a well-behaved worker does.
EXITS_WHEN_TOLD = [
    sys.executable,
    "-c",
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)",
]


def logged(caplog: pytest.LogCaptureFixture, logger: str, action: str) -> dict[str, Any]:
    """The one line `logger` logged with `action`, as `--log-format json` writes it."""
    [record] = [
        r for r in caplog.records if r.name == logger and getattr(r, "action", "") == action
    ]
    line: dict[str, Any] = json.loads(JsonFormatter().format(record))
    return line


async def test_an_in_process_worker_starting_and_stopping_says_which(
    start: Starter, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=pool.log.name)
    server = await start(pool={"max_workers": 1, "idle_timeout_s": 60})
    await job_in(server.store, await launch(server), JobStatus.SUCCEEDED)
    started = logged(caplog, pool.log.name, "worker_starting")
    assert started["message"] == "EMAIL worker EMAIL-1 starting"
    assert (started["job_type"], started["worker_id"]) == ("EMAIL", "EMAIL-1")

    await advance(server, clock, 60)

    async def stopped() -> bool:
        return await workers(server) == {"provisioning": 0, "idle": 0, "busy": 0}

    await eventually(stopped, what="the idle worker to stop")
    ended = logged(caplog, pool.log.name, "worker_stopped")
    assert ended["message"] == "EMAIL worker EMAIL-1 stopped"
    assert (ended["job_type"], ended["worker_id"]) == ("EMAIL", "EMAIL-1")


async def test_a_worker_process_starting_and_exiting_says_which(
    make_pool: MakePool, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=process_pool.log.name)
    caplog.set_level(logging.INFO, logger=process_output.log.name)
    server, processes = await make_pool(EXITS_WHEN_TOLD)
    await launch(server, JobSubType.REGISTRY_WAKE_UP)
    await processes.tick()
    [worker] = processes.processes
    pid = worker.process.pid
    started = logged(caplog, process_pool.log.name, "worker_process_started")
    assert started["message"] == f"REGISTRY worker process {pid} (REGISTRY-p1) started"
    assert (started["job_type"], started["worker_id"], started["pid"]) == (
        "REGISTRY",
        "REGISTRY-p1",
        pid,
    )

    # It claims (so it started well), runs a while, and exits 0 when told to.
    claim = ClaimRequest(job_type="REGISTRY", worker_id=worker.worker_id)
    assert len(await server.gateway.claim(claim)) == 1
    await clock.advance(HEALTHY_AFTER_S)

    async def ready() -> bool:  # it says so once it stops on SIGTERM with 0
        return "REGISTRY-p1 stdout: ready" in caplog.text

    await eventually(ready, what="the worker process to be ready")
    os.kill(pid, signal.SIGTERM)
    assert await worker.process.wait() == 0
    await processes.tick()
    ended = logged(caplog, process_pool.log.name, "worker_process_exited")
    assert ended["message"] == (
        f"REGISTRY worker process {pid} (REGISTRY-p1) exited with code 0 holding 1 job"
    )
    said = {key: ended[key] for key in ("job_type", "worker_id", "pid", "exit_code")}
    assert said == {"job_type": "REGISTRY", "worker_id": "REGISTRY-p1", "pid": pid, "exit_code": 0}


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-c", "import sys; sys.exit(3)"],  # started, died before it claimed
        ["/nonexistent/worker"],  # could not be started at all
    ],
)
async def test_a_worker_process_whose_start_failed_says_which(
    make_pool: MakePool, caplog: pytest.LogCaptureFixture, command: list[str]
) -> None:
    caplog.set_level(logging.INFO, logger=process_pool.log.name)
    server, processes = await make_pool(command)
    await launch(server, JobSubType.REGISTRY_WAKE_UP)
    await processes.tick()
    for worker in processes.processes:
        await worker.process.wait()
    await processes.tick()
    failed = logged(caplog, process_pool.log.name, "worker_start_failed")
    assert failed["message"].startswith("REGISTRY worker process ")
    assert (failed["job_type"], failed["worker_id"]) == ("REGISTRY", "REGISTRY-p1")
