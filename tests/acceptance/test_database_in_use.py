"""One database, one server: a second `jobd serve` must not take over a live server's jobs."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.process import JobdLauncher

from .handlers import HOLD_CONFIG
from .support import fetch_job, launch, poll


@pytest.mark.acceptance
async def test_a_second_server_leaves_a_live_servers_running_job_alone(
    jobd: JobdLauncher, tmp_path: Path, db_path: Path
) -> None:
    config = tmp_path / "hold.toml"
    config.write_text(HOLD_CONFIG)
    runs, go = tmp_path / "runs.txt", tmp_path / "go"
    first = jobd.start("--config", str(config), "--port", "0", "--db", str(db_path))
    body = {
        "job_type": "EMAIL",
        "job_sub_type": "HOLD",
        "job_payload": {"runs": str(runs), "go": str(go)},
    }
    async with aiohttp.ClientSession() as session:
        session_id = await launch(session, first.url, body)
        running = await poll(
            lambda: fetch_job(session, first.url, session_id),
            lambda job: job["status"] == "IN_PROGRESS",
            10,
            "the first server to run the job",
        )

        # The second server is refused with one clear line, and the first keeps its job.
        second = jobd.spawn("--config", str(config), "--port", "0", "--db", str(db_path))
        assert second.first_line() is None
        assert second.wait() != 0
        lines = second.stderr().strip().splitlines()
        assert len(lines) == 1 and "is in use by another jobd" in lines[0], second.stderr()
        still = await fetch_job(session, first.url, session_id)
        assert (still["status"], still["attempt"]) == ("IN_PROGRESS", 1), running
        go.touch()
        done = await poll(
            lambda: fetch_job(session, first.url, session_id),
            lambda job: job["status"] == "SUCCEEDED",
            10,
            "the first server to finish the job",
        )
    assert done["attempt"] == 1
    assert runs.read_text().count("\n") == 1, "the job ran once"
