"""The pytest plugin: installed by the package, used as another project would use it."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from provena_jobd.client import WaitTimedOut
from provena_jobd.clock import FakeClock
from provena_jobd.config import from_dict
from provena_jobd.models import JobStatus, JobSubType, JobType, LaunchJobRequest
from provena_jobd.testing import (
    JobdServerFactory,
    JobdTestServer,
    running_for_a_test,
    server_settings,
)
from provena_jobd.workers.handlers import JobContext
from provena_jobd.workers.shutdown import ShutdownTally

WAKE_UP = LaunchJobRequest(
    job_type=JobType.EMAIL, job_sub_type=JobSubType.EMAIL_WAKE_UP, job_payload={}
)

# A test module of some other project: pytest-asyncio in strict mode, no conftest, no import
# of the fixtures. It records the URLs it was given so the outer test can check they are gone.
USER_TESTS = """
import json
import pathlib

import pytest

from provena_jobd.testing import JobdTestServer

SEEN = pathlib.Path(__file__).with_name("seen.jsonl")


def record(server: JobdTestServer) -> None:
    with SEEN.open("a") as seen:
        seen.write(json.dumps({"url": server.url, "folder": str(server.folder)}) + "\\n")


@pytest.mark.asyncio
async def test_a_job_runs(jobd_server: JobdTestServer) -> None:
    record(jobd_server)
    launched = await jobd_server.client.launch("EMAIL", "EMAIL_WAKE_UP", {})
    job = await jobd_server.client.wait(launched.session_id, timeout_s=10)
    assert job.status == "SUCCEEDED"


@pytest.mark.asyncio
async def test_a_cold_start_keeps_jobs_waiting(jobd_server_factory) -> None:
    jobd = await jobd_server_factory(pool={"cold_start_s": 3600})
    record(jobd)
    launched = await jobd.client.launch("EMAIL", "EMAIL_WAKE_UP", {})
    job = await jobd.client.fetch(launched.session_id, wait_s=0.2)
    assert job.status == "PENDING"


def test_a_plain_test_is_not_affected() -> None:
    assert True
"""


def test_the_plugin_is_installed_as_a_pytest11_entry_point(
    pytestconfig: pytest.Config,
) -> None:
    [entry] = [e for e in entry_points(group="pytest11") if e.name == "jobd"]
    assert entry.value == "provena_jobd.testing"
    assert pytestconfig.pluginmanager.has_plugin("jobd")


async def test_jobd_server_is_ready_on_loopback(jobd_server: JobdTestServer) -> None:
    assert urlsplit(jobd_server.url).hostname == "127.0.0.1"
    assert jobd_server.settings.pool.cold_start_s == 0
    assert Path(jobd_server.settings.storage.db).parent == jobd_server.folder
    launched = await jobd_server.client.launch("EMAIL", "EMAIL_WAKE_UP", {})
    job = await jobd_server.client.wait(launched.session_id, timeout_s=10)
    assert job.status is JobStatus.SUCCEEDED


async def test_the_factory_merges_settings_and_starts_several(
    jobd_server_factory: JobdServerFactory,
) -> None:
    slow = await jobd_server_factory(pool={"EMAIL": {"cold_start_s": 3600}}, queue={"lease_s": 9})
    fast = await jobd_server_factory()
    assert slow.url != fast.url and slow.folder != fast.folder
    assert slow.settings.pool_for("EMAIL").cold_start_s == 3600
    assert slow.settings.pool_for("EMAIL").idle_timeout_s == 5.0  # the fixture's default kept
    assert slow.settings.pool_for("REGISTRY").cold_start_s == 0
    assert slow.settings.queue.lease_s == 9
    waiting = await slow.client.launch("EMAIL", "EMAIL_WAKE_UP", {})
    assert (await slow.client.fetch(waiting.session_id, wait_s=0.2)).status is JobStatus.PENDING
    pools = {p.job_type: p for p in (await slow.client.pool()).pools}
    assert pools["EMAIL"].workers["provisioning"] == 1


async def test_a_fake_clock_ends_a_cold_start_without_waiting_for_it(
    jobd_server_factory: JobdServerFactory,
) -> None:
    clock = FakeClock()
    jobd = await jobd_server_factory(pool={"cold_start_s": 30}, clock=clock)
    launched = await jobd.client.launch("EMAIL", "EMAIL_WAKE_UP", {})
    waiting = await jobd.client.fetch(launched.session_id)
    assert waiting.status is JobStatus.PENDING
    await clock.advance(29)
    assert (await jobd.client.fetch(launched.session_id)).status is JobStatus.PENDING
    await clock.advance(1)
    job = await jobd.client.wait(launched.session_id, timeout_s=10)
    assert job.status is JobStatus.SUCCEEDED
    assert job.started_timestamp == pytest.approx(clock.now(), abs=0.001)  # the test's time


async def test_a_server_on_a_fake_clock_stops_though_a_job_still_runs(tmp_path: Path) -> None:
    clock = FakeClock()
    started = asyncio.Event()

    async def sleeps_an_hour(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        started.set()
        await context.clock.sleep(3_600)  # on the fake clock nobody moves any more
        return {}

    settings = from_dict(server_settings(tmp_path, {}))
    serving = running_for_a_test(settings, {"EMAIL_WAKE_UP": sleeps_an_hour}, clock)
    jobd = await serving.__aenter__()
    await jobd.server.service.launch(WAKE_UP, caller="test")
    await started.wait()
    # Within a moment: the grace period and the stop run on the clock moved for them.
    await asyncio.wait_for(serving.__aexit__(None, None, None), 10)


async def test_on_a_fake_clock_a_job_doing_real_work_still_gets_its_grace(
    tmp_path: Path,
) -> None:
    async def works_a_moment(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        started.set()
        await asyncio.sleep(0.2)  # real work, which the fake clock does not count
        return {}

    started = asyncio.Event()
    settings = from_dict(server_settings(tmp_path, {}))  # a grace period of 1 s
    serving = running_for_a_test(settings, {"EMAIL_WAKE_UP": works_a_moment}, FakeClock())
    jobd = await serving.__aenter__()
    await jobd.server.service.launch(WAKE_UP, caller="test")
    await started.wait()
    await asyncio.wait_for(serving.__aexit__(None, None, None), 10)
    assert jobd.server.shutdown_tally() == ShutdownTally(finished=1, returned=0)


async def test_waiting_on_a_fake_clock_times_out_in_real_time(
    jobd_server_factory: JobdServerFactory,
) -> None:
    jobd = await jobd_server_factory(pool={"cold_start_s": 30}, clock=FakeClock())
    launched = await jobd.client.launch("EMAIL", "EMAIL_WAKE_UP", {})
    began = time.monotonic()
    with pytest.raises(WaitTimedOut, match=r"did not finish within 0\.5 s"):
        await jobd.client.wait(launched.session_id, timeout_s=0.5)
    # jobd's long poll waits on its fake clock, which nobody moves: the client stops
    # waiting for it a moment after its own 0.5 s, not after its HTTP timeout (30 s).
    assert time.monotonic() - began < 10


def test_another_project_uses_the_fixtures_in_strict_mode(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_uses_jobd.py").write_text(USER_TESTS)
    (project / "pytest.ini").write_text(
        textwrap.dedent(
            """\
            [pytest]
            asyncio_mode = strict
            asyncio_default_fixture_loop_scope = function
            filterwarnings = error
            """
        )
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "JOBD_"))}
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--basetemp={tmp_path / 'b'}",
        ],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "3 passed" in finished.stdout
    seen = [json.loads(line) for line in (project / "seen.jsonl").read_text().splitlines()]
    assert len(seen) == 2
    for server in seen:  # stopped: nothing listens on its port any more
        address = urlsplit(server["url"])
        with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
            probe.connect((address.hostname, address.port))


def test_the_plugin_imports_nothing_heavy_at_pytest_start() -> None:
    code = (
        "import sys, provena_jobd.testing;"
        "print(sorted({'aiohttp', 'provena_jobd.server'} & set(sys.modules)))"
    )
    finished = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert finished.stdout.strip() == "[]"
