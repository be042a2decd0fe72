"""SIGTERM and Ctrl-C: a clean exit with status 0, no traceback, and no job lost or failed."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import pytest

from tests.process import JobdLauncher, JobdProcess

from .support import burst_until_struck, launch, launch_many, list_all_jobs, wait_all_terminal

pytestmark = pytest.mark.acceptance

ALARMING = ("Traceback", "Exception", "ERROR", "CRITICAL", "Task was destroyed", "Unclosed")


def assert_clean_exit(jobd: JobdProcess, signum: signal.Signals) -> None:
    """Send `signum`; jobd must exit 0 with nothing alarming on stderr."""
    jobd.send(signum)
    assert_exited_cleanly(jobd)


def assert_exited_cleanly(jobd: JobdProcess) -> None:
    """jobd (already signalled) exits 0, with nothing alarming on stderr and stdout."""
    code = jobd.wait()
    stderr = jobd.stderr()
    assert code == 0, f"exit status {code}; stderr:\n{stderr}"
    alarming = [line for line in stderr.splitlines() if any(w in line for w in ALARMING)]
    assert alarming == [], stderr
    assert jobd.rest_of_stdout() == ""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_an_idle_server_stops_cleanly(server: JobdProcess, signum: signal.Signals) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{server.url}/") as response:
        assert response.status == 200

    assert_clean_exit(server, signum)


async def test_sigterm_while_jobs_wait_for_a_cold_start_keeps_them_for_the_next_start(
    jobd: JobdLauncher, tmp_path: Path, db_path: Path
) -> None:
    cold = tmp_path / "cold.toml"
    cold.write_text("[pool]\ncold_start_s = 30\n")
    first = jobd.start("--config", str(cold), "--port", "0", "--db", str(db_path))
    async with aiohttp.ClientSession() as session:
        launched = await asyncio.gather(*(launch(session, first.url) for _ in range(20)))

    assert_clean_exit(first, signal.SIGTERM)  # promptly: it does not wait out the cold start

    second = jobd.start("--port", "0", "--db", str(db_path))
    async with aiohttp.ClientSession() as session:
        jobs = await wait_all_terminal(session, second.url, launched, 20)
    assert {job["status"] for job in jobs.values()} == {"SUCCEEDED"}


async def test_sigterm_while_jobs_run_finishes_or_requeues_them_without_failing_any(
    jobd: JobdLauncher, tmp_path: Path, db_path: Path
) -> None:
    slow = tmp_path / "one-at-a-time.toml"
    slow.write_text("[pool]\nconcurrency = 1\nmax_workers = 1\n")
    first = jobd.start("--config", str(slow), "--port", "0", "--db", str(db_path))
    async with aiohttp.ClientSession() as session:
        launched = await launch_many(session, first.url, 200)
        listed = await list_all_jobs(session, first.url)
    assert any(job["status"] != "SUCCEEDED" for job in listed), "stop while work remains"

    assert_clean_exit(first, signal.SIGTERM)

    second = jobd.start("--port", "0", "--db", str(db_path))
    async with aiohttp.ClientSession() as session:
        jobs = await wait_all_terminal(session, second.url, launched, 30)
    assert {job["status"] for job in jobs.values()} == {"SUCCEEDED"}
    # A graceful stop is not a failed attempt: nothing was run twice or counted against it.
    assert {job["attempt"] for job in jobs.values()} == {1}


async def test_sigterm_mid_burst_answers_launches_with_200_or_a_closed_connection(
    jobd: JobdLauncher, db_path: Path
) -> None:
    first = jobd.start("--port", "0", "--db", str(db_path))

    burst = await burst_until_struck(first.url, lambda: first.send(signal.SIGTERM), after_acks=200)

    assert burst.errors_before_strike == [], burst.errors_before_strike[:5]
    assert burst.other_answers == [], "a launch during shutdown got neither 200 nor a refusal"
    assert_exited_cleanly(first)
    second = jobd.start("--port", "0", "--db", str(db_path))
    async with aiohttp.ClientSession() as session:
        jobs = await wait_all_terminal(session, second.url, burst.acknowledged, 30)
    assert {job["status"] for job in jobs.values()} == {"SUCCEEDED"}
