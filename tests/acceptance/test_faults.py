"""A handler that exits or interrupts does not take jobd down or leave it deaf (issue 18)."""

from __future__ import annotations

import signal
from pathlib import Path

import aiohttp
import pytest

from tests.process import JobdLauncher

from .handlers import MISBEHAVING_CONFIG
from .support import launch, launch_body, wait_all_terminal

pytestmark = pytest.mark.acceptance


@pytest.mark.parametrize("sub_type", ["EXIT", "INTERRUPT"])
async def test_a_handler_that_exits_fails_its_job_and_jobd_keeps_serving(
    jobd: JobdLauncher, tmp_path: Path, db_path: Path, sub_type: str
) -> None:
    config = tmp_path / "misbehaving.toml"
    config.write_text(MISBEHAVING_CONFIG)
    server = jobd.start("--config", str(config), "--port", "0", "--db", str(db_path))
    body = {"job_type": "EMAIL", "job_sub_type": sub_type, "job_payload": {"code": 3}}
    async with aiohttp.ClientSession() as session:
        bad = await launch(session, server.url, body)
        good = [await launch(session, server.url, launch_body()) for _ in range(3)]
        jobs = await wait_all_terminal(session, server.url, [bad, *good], 15)

    expected = "SystemExit(3)" if sub_type == "EXIT" else "KeyboardInterrupt()"
    assert jobs[bad]["status"] == "FAILED"
    assert jobs[bad]["info"] == f"Callback function raised unhandled exception. Error: {expected}."
    assert {jobs[s]["status"] for s in good} == {"SUCCEEDED"}
    server.send(signal.SIGTERM)
    assert server.wait() == 0
    assert expected in server.stderr()


async def test_a_system_exit_jobd_cannot_catch_stops_it_at_once_with_an_error_status(
    jobd: JobdLauncher, tmp_path: Path, db_path: Path
) -> None:
    config = tmp_path / "misbehaving.toml"
    config.write_text(MISBEHAVING_CONFIG)
    server = jobd.start("--config", str(config), "--port", "0", "--db", str(db_path))
    body = {"job_type": "EMAIL", "job_sub_type": "EXIT_LATER", "job_payload": {}}
    async with aiohttp.ClientSession() as session:
        await launch(session, server.url, body)

    # A supervisor sees the process end, with a nonzero status and a reason, and restarts it.
    assert server.wait(timeout_s=15) == 70
    assert "jobd: error: SystemExit(4) raised outside any handler's task" in server.stderr()
