"""A job that kills jobd is found and failed alone; the jobs that ran beside it are not charged
(issue 18, item 4)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from tests.process import JobdLauncher

from .handlers import HOLD_CONFIG, MISBEHAVING_CONFIG
from .support import fetch_job, launch, list_all_jobs, poll

pytestmark = pytest.mark.acceptance

MAX_RESTARTS = 8


async def test_a_job_that_crashes_jobd_fails_alone_and_charges_no_other_job(
    jobd: JobdLauncher, tmp_path: Path, db_path: Path
) -> None:
    config = tmp_path / "poison.toml"
    config.write_text(
        HOLD_CONFIG + MISBEHAVING_CONFIG + "[pool]\nmax_attempts = 2\nconcurrency = 8\n"
    )
    runs, go = tmp_path / "runs.txt", tmp_path / "go"
    hold = {
        "job_type": "EMAIL",
        "job_sub_type": "HOLD",
        "job_payload": {"runs": str(runs), "go": str(go)},
    }
    args = ("--config", str(config), "--port", "0", "--db", str(db_path))
    server = jobd.start(*args)
    async with aiohttp.ClientSession() as session:
        held = [await launch(session, server.url, hold) for _ in range(3)]
        await poll(
            lambda: asyncio.gather(*(fetch_job(session, server.url, s) for s in held)),
            lambda jobs: all(job["status"] == "IN_PROGRESS" for job in jobs),
            10,
            "three jobs running",
        )
        poison = await launch(
            session, server.url, {"job_type": "EMAIL", "job_sub_type": "CRASH", "job_payload": {}}
        )
    assert server.wait() == 70, "the poison job killed jobd while three others ran"
    go.touch()

    # A supervisor restarts jobd until it stays up.
    crashes = 1
    for _ in range(MAX_RESTARTS):
        server = jobd.start(*args)
        async with aiohttp.ClientSession() as session:
            try:
                jobs = await poll(
                    lambda url=server.url: list_all_jobs(session, url),  # type: ignore[misc]
                    lambda jobs: all(job["status"] in {"SUCCEEDED", "FAILED"} for job in jobs),
                    15,
                    "every job to finish",
                )
            except (AssertionError, aiohttp.ClientError):
                assert server.wait() == 70
                crashes += 1
                continue
        break
    else:
        pytest.fail(f"jobd never stayed up after {MAX_RESTARTS} restarts")

    by_id = {job["session_id"]: job for job in jobs}
    # The bystanders ran again, alone, and their lost run was not counted.
    assert {s: (by_id[s]["status"], by_id[s]["attempt"]) for s in held} == {
        s: ("SUCCEEDED", 1) for s in held
    }
    # The poison job crashed jobd twice more while running alone: then it was failed.
    assert by_id[poison]["status"] == "FAILED"
    assert by_id[poison]["attempt"] == 2
    assert by_id[poison]["info"] == (
        "Job failed: jobd stopped unexpectedly each time it ran this job alone "
        "(2 attempts), so the job is taken to be the cause."
    )
    assert crashes == 3
