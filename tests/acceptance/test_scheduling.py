"""Scheduling and flow control through the real `jobd serve` and `jobd` CLI (issue 14)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import aiohttp
import pytest

from tests.process import JobdLauncher, JobdProcess, jobd_environment

from .support import Json, fetch_job, launch, launch_body, list_all_jobs, poll, wait_all_terminal

pytestmark = pytest.mark.acceptance


def cli(jobd: JobdLauncher, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [jobd.executable, "--url", url, *args],
        env=jobd_environment(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def restart(jobd: JobdLauncher, server: JobdProcess, *args: str) -> JobdProcess:
    server.send(signal.SIGTERM)
    assert server.wait() == 0
    return jobd.start(*args)


async def post(session: aiohttp.ClientSession, url: str, body: Json, **headers: str) -> Json:
    async with session.post(f"{url}/jobs/admin/launch", json=body, headers=headers) as response:
        answer: Json = await response.json()
        return {"status": response.status, **answer}


async def test_an_idempotent_launch_is_launched_once_even_across_a_restart(
    jobd: JobdLauncher, tmp_path: Path
) -> None:
    args = ("--port", "0", "--db", str(tmp_path / "jobd.db"))
    server = jobd.start(*args)
    body = launch_body()
    async with aiohttp.ClientSession() as session:
        first = await post(session, server.url, body, **{"Idempotency-Key": "retry-me"})
        again = await post(session, server.url, body, **{"Idempotency-Key": "retry-me"})
        assert first["status"] == again["status"] == 200
        assert again["session_id"] == first["session_id"]
        other = await post(
            session,
            server.url,
            {**launch_body("REGISTRY_WAKE_UP")},
            **{"Idempotency-Key": "retry-me"},
        )
        assert other["status"] == 409 and "different launch request" in other["detail"]
    server = restart(jobd, server, *args)
    async with aiohttp.ClientSession() as session:
        after = await post(session, server.url, {**body, "idempotency_key": "retry-me"})
        assert after["session_id"] == first["session_id"]
        assert len(await list_all_jobs(session, server.url)) == 1


async def test_a_delayed_job_waits_without_a_cold_start(jobd: JobdLauncher, tmp_path: Path) -> None:
    server = jobd.start("--port", "0", "--db", str(tmp_path / "jobd.db"))
    async with aiohttp.ClientSession() as session:
        session_id = await launch(session, server.url, launch_body(delay_s=3600))
        job = await fetch_job(session, server.url, session_id)
        assert job["status"] == "PENDING" and job["info"].startswith("Scheduled: waits until")
        async with session.get(f"{server.url}/admin/pool") as response:
            pools = {p["job_type"]: p for p in (await response.json())["pools"]}
        assert pools["EMAIL"]["cold_starts"] == 0 and pools["EMAIL"]["waiting"] == 1


async def test_a_paused_type_waits_across_a_restart_until_resumed(
    jobd: JobdLauncher, tmp_path: Path
) -> None:
    args = ("--port", "0", "--db", str(tmp_path / "jobd.db"))
    server = jobd.start(*args)
    paused = cli(jobd, server.url, "pause", "EMAIL")
    assert paused.returncode == 0 and "paused: EMAIL" in paused.stdout, paused.stderr
    async with aiohttp.ClientSession() as session:
        session_id = await launch(session, server.url)
        job = await poll(
            lambda: fetch_job(session, server.url, session_id),
            lambda job: bool(job["info"]),
            10,
            "the job to say its type is paused",
        )
        assert job["status"] == "PENDING" and "EMAIL is paused" in job["info"]
    server = restart(jobd, server, *args)
    assert "paused: EMAIL" in cli(jobd, server.url, "paused").stdout
    async with aiohttp.ClientSession() as session:
        assert (await fetch_job(session, server.url, session_id))["status"] == "PENDING"
        resumed = cli(jobd, server.url, "resume", "EMAIL")
        assert resumed.returncode == 0 and "paused: -" in resumed.stdout
        done = await wait_all_terminal(session, server.url, [session_id], timeout_s=20)
        assert done[session_id]["status"] == "SUCCEEDED"


async def test_a_start_limit_holds_jobs_back_and_says_so(
    jobd: JobdLauncher, tmp_path: Path
) -> None:
    config = tmp_path / "jobd.toml"
    config.write_text("[pool.EMAIL]\nmax_starts_per_min = 2\n")
    server = jobd.start("--port", "0", "--db", str(tmp_path / "jobd.db"), "--config", str(config))
    async with aiohttp.ClientSession() as session:
        ids = [await launch(session, server.url) for _ in range(5)]

        async def jobs() -> list[Json]:
            return [await fetch_job(session, server.url, i) for i in ids]

        def settled(found: list[Json]) -> bool:
            done = sum(job["status"] == "SUCCEEDED" for job in found)
            held = sum("start limit (2 per minute)" in (job["info"] or "") for job in found)
            return done == 2 and held == 3

        found = await poll(jobs, settled, 20, "two jobs to run and three to be held back")
        assert all(job["status"] in {"SUCCEEDED", "PENDING"} for job in found)


async def test_a_schedule_fires_each_due_time_once_across_restarts(
    jobd: JobdLauncher, tmp_path: Path
) -> None:
    config = tmp_path / "jobd.toml"
    # Every minute: a new schedule fires the due time of the last minute at once.
    config.write_text(
        '[[schedules]]\nname = "tick"\ncron = "* * * * *"\njob_type = "EMAIL"\n'
        'job_sub_type = "EMAIL_WAKE_UP"\nuser = "ops"\npayload = {reason = "nightly"}\n'
    )
    args = ("--port", "0", "--db", str(tmp_path / "jobd.db"), "--config", str(config))
    server = jobd.start(*args)
    async with aiohttp.ClientSession() as session:
        first = await poll(
            lambda: list_all_jobs(session, server.url), bool, 10, "the scheduled job"
        )
    listed = cli(jobd, server.url, "schedules")
    assert listed.returncode == 0 and "tick" in listed.stdout and "* * * * *" in listed.stdout
    for _ in range(2):
        server = restart(jobd, server, *args)
    async with aiohttp.ClientSession() as session:
        jobs = await list_all_jobs(session, server.url)
        async with session.get(f"{server.url}/admin/schedules") as response:
            [shown] = (await response.json())["schedules"]
    assert first[0]["username"] == "ops" and first[0]["job_sub_type"] == "EMAIL_WAKE_UP"
    # Restarts within one minute add nothing; crossing a minute boundary adds that minute.
    minutes = [job["created_timestamp"] // 60 for job in jobs]
    assert len(minutes) == len(set(minutes)) and len(jobs) <= 2
    assert shown["last_session_id"] in {job["session_id"] for job in jobs}
    assert shown["next_run_at"] % 60 == 0
