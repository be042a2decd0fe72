"""kill -9 at the worst moments: every acknowledged launch still runs, exactly once."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from tests.process import JobdLauncher, JobdProcess

from .handlers import BRIEF_WAKE_UP_CONFIG, HOLD_CONFIG
from .support import (
    Json,
    burst_until_struck,
    fetch_job,
    fetch_jobs,
    in_flight_rows,
    launch,
    launch_many,
    list_all_jobs,
    outcome,
    poll,
    statuses_in_db,
    wait_all_terminal,
)

pytestmark = pytest.mark.acceptance

KILL_AFTER_ACKS = 300
FINISH_TIMEOUT_S = 30.0
STABLE_FOR_S = 1.5  # longer than a pool's poll interval (1 s): a re-run would show


async def assert_unchanged(url: str, expected: dict[str, Json], for_s: float) -> None:
    """Fetch the finished jobs again and again for `for_s` seconds: nothing may change."""
    want = {session_id: outcome(job) for session_id, job in expected.items()}
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + for_s
        while time.monotonic() < deadline:
            listed = {job["session_id"]: job for job in await list_all_jobs(session, url)}
            changed = {s for s in want if outcome(listed[s]) != want[s]}
            assert not changed, f"{len(changed)} finished jobs changed, e.g. {sorted(changed)[:3]}"
            await asyncio.sleep(0.1)
        fetched = await fetch_jobs(session, url, want)
    assert {s: outcome(job) for s, job in fetched.items()} == want


@pytest.mark.parametrize("durability", ["full", "normal"])
async def test_sigkill_mid_burst_loses_no_acknowledged_launch(
    jobd: JobdLauncher, tmp_path: Path, db_path: Path, durability: str
) -> None:
    # `normal` may lose commits to a power cut, never to a crash of jobd itself.
    cold = tmp_path / "cold.toml"
    cold.write_text("[pool]\ncold_start_s = 30\n")  # workers still provisioning: all PENDING
    first = jobd.start(
        "--config", str(cold), "--port", "0", "--db", str(db_path), "--durability", durability
    )

    burst = await burst_until_struck(first.url, first.process.kill, KILL_AFTER_ACKS)

    assert first.wait() == -signal.SIGKILL
    assert burst.errors_before_strike == [], burst.errors_before_strike[:5]
    assert burst.other_answers == [], burst.other_answers[:5]
    acknowledged = burst.acknowledged
    assert len(acknowledged) == len(set(acknowledged)) >= KILL_AFTER_ACKS
    second = jobd.start("--port", "0", "--db", str(db_path))
    async with aiohttp.ClientSession() as session:
        jobs = await wait_all_terminal(session, second.url, acknowledged, FINISH_TIMEOUT_S)
        # Launches committed just before the kill but never acknowledged run too; they may
        # be queued behind the acknowledged ones, so wait for every job that exists.
        stored = [job["session_id"] for job in await list_all_jobs(session, second.url)]
        await wait_all_terminal(session, second.url, stored, FINISH_TIMEOUT_S)
        everything = await list_all_jobs(session, second.url)
        fetched = await fetch_jobs(session, second.url, acknowledged)

    not_succeeded = {s: j["status"] for s, j in jobs.items() if j["status"] != "SUCCEEDED"}
    assert not_succeeded == {}
    assert all(job["result"] == {} for job in jobs.values())
    ids = [job["session_id"] for job in everything]
    assert len(ids) == len(set(ids)), "a job is listed twice"
    assert all(job["status"] == "SUCCEEDED" for job in everything), "an unacknowledged one too"
    assert {s: outcome(job) for s, job in fetched.items()} == {
        s: outcome(job) for s, job in jobs.items()
    }
    await assert_unchanged(second.url, fetched, STABLE_FOR_S)


def stop_with_a_job_in_flight(victim: JobdProcess, db: Path, within_s: float) -> dict[str, str]:
    """Freeze the server until one is caught holding a job, then SIGKILL it; return the DB state.

    The server is SIGSTOPped while its database is read, so what is read is exactly what the
    kill leaves behind.
    """
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        victim.freeze()
        try:
            held = in_flight_rows(db)
            if held:
                state = statuses_in_db(db)
                victim.kill()
                return state
        finally:
            victim.thaw()
        time.sleep(0.005)
    pytest.fail("never caught the server with a job DEQUEUED or IN_PROGRESS")


async def test_sigkill_with_jobs_running_requeues_them_and_reruns_nothing_finished(
    jobd: JobdLauncher, tmp_path: Path, db_path: Path
) -> None:
    # One at a time, 10 ms each: jobs are still running when the launches end, however fast
    # jobd runs no-op jobs (with instant ones it could finish all 400 first on a slow machine).
    slow = tmp_path / "one-at-a-time.toml"
    slow.write_text(BRIEF_WAKE_UP_CONFIG)
    first = jobd.start("--config", str(slow), "--port", "0", "--db", str(db_path))
    async with aiohttp.ClientSession() as session:
        launched = await launch_many(session, first.url, 400)

    at_kill = stop_with_a_job_in_flight(first, db_path, within_s=15)
    killed_at = time.time()

    assert first.wait() == -signal.SIGKILL
    in_flight = {s for s, status in at_kill.items() if status in {"DEQUEUED", "IN_PROGRESS"}}
    finished_before = {s for s, status in at_kill.items() if status == "SUCCEEDED"}
    assert in_flight, "the precondition: a job was held by a worker at the kill"
    assert set(launched) == set(at_kill), "every acknowledged launch is in the database"

    second = jobd.start("--port", "0", "--db", str(db_path))
    async with aiohttp.ClientSession() as session:
        jobs = await wait_all_terminal(session, second.url, launched, FINISH_TIMEOUT_S)

    assert {s for s, job in jobs.items() if job["status"] != "SUCCEEDED"} == set()
    assert all(job["result"] == {} for job in jobs.values())
    for session_id in in_flight:
        # Its first attempt died with the server; it was requeued, its lost run not counted
        # (it ran beside others), and ran again. (Or its finish was committed to the WAL in
        # the instant before the stop: then it finished before the kill.)
        job = jobs[session_id]
        assert job["attempt"] == 1, job
    for session_id in finished_before:
        # Finished before the kill: not run again after the restart.
        assert jobs[session_id]["attempt"] == 1, jobs[session_id]
        assert jobs[session_id]["finished_timestamp"] <= killed_at, jobs[session_id]
    await assert_unchanged(second.url, jobs, STABLE_FOR_S)


async def test_jobs_in_progress_at_a_sigkill_run_again_after_the_restart(
    jobd: JobdLauncher, tmp_path: Path, db_path: Path
) -> None:
    config = tmp_path / "hold.toml"
    config.write_text(HOLD_CONFIG)
    runs, go = tmp_path / "runs.txt", tmp_path / "go"
    body = {
        "job_type": "EMAIL",
        "job_sub_type": "HOLD",
        "job_payload": {"runs": str(runs), "go": str(go)},
    }
    first = jobd.start("--config", str(config), "--port", "0", "--db", str(db_path))
    async with aiohttp.ClientSession() as session:
        held = [await launch(session, first.url, body) for _ in range(3)]  # one per worker

        async def started() -> tuple[list[str], int]:
            statuses = [(await fetch_job(session, first.url, s))["status"] for s in held]
            return statuses, len(runs.read_text().splitlines()) if runs.exists() else 0

        await poll(started, lambda s: s == (["IN_PROGRESS"] * 3, 3), 10, "3 handlers running")

    first.kill()
    go.touch()  # their handlers may finish now: only the rerun after the restart can
    second = jobd.start("--config", str(config), "--port", "0", "--db", str(db_path))
    async with aiohttp.ClientSession() as session:
        jobs = await wait_all_terminal(session, second.url, held, FINISH_TIMEOUT_S)

    # Each ran again, alone (three ran together when jobd died: none is charged for it).
    assert {s: (j["status"], j["result"], j["attempt"]) for s, j in jobs.items()} == {
        s: ("SUCCEEDED", {"held": True}, 1) for s in held
    }
    assert sorted(runs.read_text().splitlines()) == sorted(
        f"{s} attempt 1" for s in held for _ in range(2)
    )
    await assert_unchanged(second.url, jobs, STABLE_FOR_S)
