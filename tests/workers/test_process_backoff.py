"""Crash-loop back-off: a process pool whose worker processes die as they start waits 1 s,
2 s, 4 s ... (at most 60 s, on its Clock) before it starts the next, one at a time, and starts
as usual again once one proves healthy.

The pools here are real `ProcessPool`s on a real store, starting real processes, with a fake
clock; each test drives its pool's ticks itself (the supervisor loop is not started), so
"nothing starts until the clock moves" is checked tick by tick.
"""

from __future__ import annotations

import logging
import sys

import msgspec
import pytest

from provena_jobd.clock import FakeClock
from provena_jobd.models import JobSubType
from provena_jobd.pool_models import StartBackoffInfo
from provena_jobd.worker_protocol import ClaimRequest
from provena_jobd.workers.process_pool import ProcessPool, start_error
from provena_jobd.workers.start_backoff import HEALTHY_AFTER_S, start_delay
from tests.workers.pool_helpers import MakePool, launch

DIES_AT_ONCE = [sys.executable, "-c", "import sys; sys.exit(3)"]
NEVER_CLAIMS = [sys.executable, "-c", "import time; time.sleep(60)"]
WAKE = JobSubType.REGISTRY_WAKE_UP


async def all_exited(pool: ProcessPool) -> None:
    """Wait until every process the pool started has exited (they exit by themselves)."""
    await all_exited_but(pool, "")


async def all_exited_but(pool: ProcessPool, worker_id: str) -> None:
    """Wait until every process but `worker_id` has exited."""
    for worker in pool.processes:
        if worker.worker_id != worker_id:
            await worker.process.wait()


def test_the_pause_doubles_from_one_second_up_to_a_minute() -> None:
    assert [start_delay(n) for n in range(0, 9)] == [0, 1, 2, 4, 8, 16, 32, 60, 60]
    assert start_delay(10_000) == 60


async def test_processes_that_die_at_start_are_restarted_after_a_doubling_pause(
    make_pool: MakePool, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="provena_jobd.workers.process_pool")
    server, pool = await make_pool(DIES_AT_ONCE, max_workers=1)
    await launch(server, WAKE)
    await pool.tick()
    assert pool.cold_starts == 1
    for failures, delay in enumerate((1.0, 2.0, 4.0, 8.0), start=1):
        [worker] = pool.processes
        pid = worker.process.pid
        await all_exited(pool)
        caplog.clear()
        for _ in range(5):  # the clock stands still: no tick starts another
            await pool.tick()
        assert (pool.cold_starts, pool.processes) == (failures, [])
        snapshot = await pool.snapshot()
        assert snapshot.start_backoff == StartBackoffInfo(
            failures=failures, exit_code=3, error=None, retry_at=clock.now() + delay
        )
        # One line per failed start, with its exit status and when the next start is.
        plural = "s" if failures > 1 else ""
        assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
            f"REGISTRY worker process {pid} exited with code 3 before its first claim "
            f"({failures} failed start{plural} in a row); next start in {delay:g} s"
        ]
        await clock.advance(delay - 0.1)
        await pool.tick()
        assert pool.cold_starts == failures  # not yet
        await clock.advance(0.1)
        await pool.tick()
        assert pool.cold_starts == failures + 1  # the pause is over: one more start


async def test_while_processes_fail_to_start_the_pool_starts_one_at_a_time(
    make_pool: MakePool, clock: FakeClock
) -> None:
    server, pool = await make_pool(DIES_AT_ONCE, max_workers=3)
    for _ in range(3):
        await launch(server, WAKE)
    await pool.tick()
    assert pool.cold_starts == 3  # no failure yet: as many as the jobs need
    await all_exited(pool)
    await pool.tick()
    backoff = (await pool.snapshot()).start_backoff
    assert backoff is not None and (backoff.failures, backoff.retry_at) == (3, clock.now() + 4)
    await clock.advance(4)
    await pool.tick()
    assert (pool.cold_starts, len(pool.processes)) == (4, 1)
    await pool.tick()  # the one started is still provisioning, or has died: no other starts
    assert pool.cold_starts == 4


async def test_a_command_that_cannot_run_is_retried_after_the_same_pause(
    make_pool: MakePool, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    server, pool = await make_pool(["/nonexistent/worker"])
    await launch(server, WAKE)
    await pool.tick()
    assert (pool.cold_starts, pool.processes) == (0, [])
    backoff = (await pool.snapshot()).start_backoff
    assert backoff is not None
    assert (backoff.failures, backoff.exit_code, backoff.retry_at) == (1, None, clock.now() + 1)
    assert backoff.error is not None and backoff.error.startswith("FileNotFoundError:")
    assert "REGISTRY worker process could not be started: FileNotFoundError" in caplog.text
    assert "(1 failed start in a row); next start in 1 s" in caplog.text
    await pool.tick()
    assert (await pool.snapshot()).start_backoff == backoff  # no try without the clock moving
    await clock.advance(1)
    await pool.tick()
    backoff = (await pool.snapshot()).start_backoff
    assert backoff is not None and (backoff.failures, backoff.retry_at) == (2, clock.now() + 2)


async def test_the_pause_resets_once_a_process_has_claimed_and_run_a_while(
    make_pool: MakePool, clock: FakeClock
) -> None:
    server, pool = await make_pool(DIES_AT_ONCE, max_workers=2)
    await launch(server, WAKE)
    await pool.tick()
    await all_exited(pool)
    await pool.tick()
    await clock.advance(1)
    await pool.tick()
    await all_exited(pool)
    await pool.tick()
    backoff = (await pool.snapshot()).start_backoff
    assert backoff is not None and backoff.failures == 2

    # The command is fixed: the next process starts after the pause and claims the job.
    pool.settings = msgspec.structs.replace(pool.settings, command=NEVER_CLAIMS)
    await clock.advance(2)
    await pool.tick()
    [healthy] = pool.processes
    claim = ClaimRequest(job_type="REGISTRY", worker_id=healthy.worker_id)
    assert len(await server.gateway.claim(claim)) == 1  # as its first HTTP claim would
    await pool.tick()
    backoff = (await pool.snapshot()).start_backoff
    assert backoff is not None and backoff.failures == 2  # a claim alone is not enough
    await clock.advance(HEALTHY_AFTER_S)
    await pool.tick()
    assert (await pool.snapshot()).start_backoff is None

    # A later failed start pauses 1 s again, not 8 s; the healthy process still running
    # does not clear it.
    pool.settings = msgspec.structs.replace(pool.settings, command=DIES_AT_ONCE)
    await launch(server, WAKE)
    await pool.tick()
    assert pool.cold_starts == 4
    await all_exited_but(pool, healthy.worker_id)
    await pool.tick()
    await pool.tick()
    backoff = (await pool.snapshot()).start_backoff
    assert backoff is not None
    assert (backoff.failures, backoff.retry_at) == (1, clock.now() + 1)


def test_a_start_error_without_a_file_name_says_what_was_run_and_where() -> None:
    # As uvloop raises it: no file name, so a missing command and a missing cwd read alike.
    error = FileNotFoundError(2, "No such file or directory")
    message = start_error(error, ["registry-worker", "--run"], "/srv/workers")
    assert message == (
        "FileNotFoundError: No such file or directory "
        "(command 'registry-worker', cwd '/srv/workers')"
    )
