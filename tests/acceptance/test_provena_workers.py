"""Provena's own kind of worker code (`tests/acceptance/provena_service`, written as
registry-api's `jobs/`) run by a real `jobd serve` as worker processes it starts and stops."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from provena_jobd.identity import hash_token
from provena_jobd.models import INFO_IN_PROGRESS, INFO_UNHANDLED
from tests.helpers import eventually, process_alive
from tests.http.auth_helpers import Keys
from tests.process import JobdLauncher, JobdProcess

from .support import fetch_job, launch, wait_all_terminal

pytestmark = pytest.mark.acceptance

SERVICE = Path(__file__).parent / "provena_service"
WORKER_TOKEN = "jobd_worker-token-for-tests"
Json = dict[str, Any]


def wake_up(reason: str | None = None, username: str | None = None) -> Json:
    """A REGISTRY_WAKE_UP launch; `reason` steers the test service's handler."""
    body: Json = {
        "job_type": "REGISTRY",
        "job_sub_type": "REGISTRY_WAKE_UP",
        "job_payload": {} if reason is None else {"reason": reason},
    }
    if username is not None:
        body["username"] = username
    return body


def write_config(
    folder: Path,
    idle_timeout_s: float = 30.0,
    grace_s: float = 10.0,
    extra: str = "",
    worker_token: str | None = None,
) -> Path:
    """REGISTRY jobs in up to 2 processes of the test service; short leases for the rescuer.

    `worker_token`: the JOBD_TOKEN the pool's `env` gives them (else jobd gives its own).
    """
    config = folder / "jobd.toml"
    env = [f'TEST_MARKERS = "{folder}"', 'PYTHONUNBUFFERED = "1"']
    if worker_token is not None:
        env.append(f'JOBD_TOKEN = "{worker_token}"')
    config.write_text(
        f"""{extra}
[server]
shutdown_grace_s = {grace_s}

[queue]
lease_s = 1.0
rescue_interval_s = 0.1

[pool.REGISTRY]
max_workers = 2
idle_timeout_s = {idle_timeout_s}
command = ["{sys.executable}", "launch_job_runner.py"]
cwd = "{SERVICE}"
env = {{ {", ".join(env)} }}
"""
    )
    return config


def start(jobd: JobdLauncher, folder: Path, **config: Any) -> JobdProcess:
    """`jobd serve` with the worker-process config."""
    path = write_config(folder, **config)
    return jobd.start("--config", str(path), "--port", "0", "--db", str(folder / "jobd.db"))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP session for the test."""
    async with aiohttp.ClientSession() as client:
        yield client


async def registry_pool(session: aiohttp.ClientSession, url: str) -> Json:
    """The REGISTRY pool of `GET /admin/pool`."""
    async with session.get(f"{url}/admin/pool") as response:
        assert response.status == 200
        pools: list[Json] = (await response.json())["pools"]
    return next(pool for pool in pools if pool["job_type"] == "REGISTRY")


async def until(probe: Any, timeout_s: float = 30.0, what: str = "condition") -> Any:
    """Poll an async probe until it returns something truthy (worker processes start slowly)."""
    return await eventually(probe, within_s=timeout_s, what=what)


async def test_a_batch_of_jobs_all_succeed_in_worker_processes_which_exit_when_idle(
    jobd: JobdLauncher, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    server = start(jobd, tmp_path, idle_timeout_s=1.0)
    launched = [await launch(session, server.url, wake_up()) for _ in range(12)]
    seen_pids: set[int] = set()

    async def processes_seen() -> bool:
        pool = await registry_pool(session, server.url)
        assert len(pool["processes"]) <= 2  # never more than max_workers
        seen_pids.update(p["pid"] for p in pool["processes"])
        return bool(seen_pids)

    await until(processes_seen, what="worker processes in /admin/pool")
    jobs = await wait_all_terminal(session, server.url, launched, 60)
    assert {job["status"] for job in jobs.values()} == {"SUCCEEDED"}
    assert all(job["result"] == {} for job in jobs.values())  # WakeUpResult().dict()
    pool = await registry_pool(session, server.url)
    assert pool["jobs_finished"] == 12 and 1 <= pool["cold_starts"] <= 2

    # After the idle timeout every process has exited, and jobd has reaped it.
    async def all_gone() -> bool:
        pool = await registry_pool(session, server.url)
        return pool["processes"] == [] and not any(process_alive(pid) for pid in seen_pids)

    await until(all_gone, what="idle worker processes to exit")


async def test_a_raising_callback_fails_its_job_with_the_reference_text(
    jobd: JobdLauncher, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    server = start(jobd, tmp_path)
    bad = await launch(session, server.url, wake_up("raise"))
    good = await launch(session, server.url, wake_up())
    jobs = await wait_all_terminal(session, server.url, [bad, good], 60)
    assert jobs[bad]["status"] == "FAILED"
    assert jobs[bad]["info"] == INFO_UNHANDLED.format(error="the registry is unreachable")
    assert jobs[good]["status"] == "SUCCEEDED"  # the worker carried on


async def test_a_killed_worker_process_s_job_is_finished_by_the_next_process(
    jobd: JobdLauncher, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    server = start(jobd, tmp_path)
    stalled = await launch(session, server.url, wake_up("stall"))
    marker = tmp_path / f"{stalled}.started"

    async def stalled_pid() -> int | None:
        return int(marker.read_text()) if marker.exists() and marker.read_text() else None

    pid = await until(stalled_pid, what="the worker to start the stalling job")
    running = await fetch_job(session, server.url, stalled)
    assert (running["status"], running["info"]) == ("IN_PROGRESS", INFO_IN_PROGRESS)
    pool = await registry_pool(session, server.url)
    assert {"pid": pid, "state": "busy", "jobs": 1} in [
        {k: p[k] for k in ("pid", "state", "jobs")} for p in pool["processes"]
    ]
    os.kill(pid, signal.SIGKILL)
    [job] = (await wait_all_terminal(session, server.url, [stalled], 60)).values()
    assert (job["status"], job["attempt"]) == ("SUCCEEDED", 2)
    pool = await registry_pool(session, server.url)
    assert pid not in {p["pid"] for p in pool["processes"]}
    assert pool["cold_starts"] >= 2


async def test_a_registry_worker_launches_the_lodge_job_on_the_users_behalf(
    jobd: JobdLauncher, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    server = start(jobd, tmp_path)
    body = {
        "job_type": "REGISTRY",
        "job_sub_type": "REGISTER_CREATE_ACTIVITY",
        "username": "alice",
        "job_payload": {
            "created_item_id": "10378.1/1",
            "created_item_subtype": "MODEL_RUN",
            "linked_person_id": "10378.1/2",
        },
    }
    created = await launch(session, server.url, body)
    [job] = (await wait_all_terminal(session, server.url, [created], 60)).values()
    assert job["status"] == "SUCCEEDED", job
    lodge_id = job["result"]["lodge_session_id"]
    [lodge] = (await wait_all_terminal(session, server.url, [lodge_id], 60)).values()
    assert (lodge["job_sub_type"], lodge["username"], lodge["status"]) == (
        "LODGE_CREATE_ACTIVITY",
        "alice",
        "SUCCEEDED",
    )
    assert lodge["payload"]["creation_activity_id"] == job["result"]["creation_activity_id"]
    assert (await fetch_job(session, server.url, created))["status"] == "SUCCEEDED"


async def test_sigterm_stops_the_worker_processes_and_keeps_their_jobs(
    jobd: JobdLauncher, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    server = start(jobd, tmp_path, grace_s=0.2)
    stalled = await launch(session, server.url, wake_up("stall"))
    marker = tmp_path / f"{stalled}.started"

    async def stalled_pid() -> int | None:
        return int(marker.read_text()) if marker.exists() and marker.read_text() else None

    pid = await until(stalled_pid, what="the worker to start the stalling job")
    server.send(signal.SIGTERM)
    assert server.wait() == 0, server.stderr()
    assert not process_alive(pid)

    # The job was given back unharmed: the next jobd runs it (the marker lets it succeed).
    second = start(jobd, tmp_path)
    [job] = (await wait_all_terminal(session, second.url, [stalled], 60)).values()
    assert (job["status"], job["attempt"]) == ("SUCCEEDED", 1)


async def test_in_token_mode_the_processes_claim_with_the_worker_token_they_are_given(
    jobd: JobdLauncher, tmp_path: Path
) -> None:
    admin, worker = hash_token("admin-token"), hash_token(WORKER_TOKEN)
    tokens = f"""
[auth]
mode = "token"
[[auth.tokens]]
sha256 = "{admin}"
user = "ops"
roles = ["job-service-read", "job-service-write", "job-service-admin"]
[[auth.tokens]]
sha256 = "{worker}"
user = "registry-worker"
roles = ["job-service-worker"]
"""
    server = start(jobd, tmp_path, extra=tokens, worker_token=WORKER_TOKEN)
    headers = {"Authorization": "Bearer admin-token"}
    async with aiohttp.ClientSession(headers=headers) as session:
        launched = await launch(session, server.url, wake_up())
        [job] = (await wait_all_terminal(session, server.url, [launched], 60)).values()
        assert job["status"] == "SUCCEEDED"
        # The worker token may run jobs, nothing else.
        async with session.get(
            f"{server.url}/jobs/admin/fetch",
            params={"session_id": launched},
            headers={"Authorization": f"Bearer {WORKER_TOKEN}"},
        ) as response:
            assert response.status == 401


# A token jobd makes: its prefix and 43 characters of base64url.
MINTED = re.compile(r"jobd_[A-Za-z0-9_-]{43}")


async def assert_no_minted_token_shown(session: aiohttp.ClientSession, server: JobdProcess) -> None:
    """Neither jobd's log (its workers' output included), /admin/pool nor /admin/config shows
    a token of the kind jobd makes for its processes."""
    shown = [server.stderr()]
    # The workers' output is there (whichever of them started first).
    assert re.search(r"REGISTRY-p\d+ stdout: Launching worker\.", shown[0])
    for route in ("/admin/pool", "/admin/config"):
        async with session.get(f"{server.url}{route}") as response:
            assert response.status == 200
            shown.append(await response.text())
    assert not [text for text in shown if MINTED.search(text)]


# Token mode with an admin token only: the processes get the token jobd makes.
ADMIN_TOKEN_ONLY = f"""
[auth]
mode = "token"
[[auth.tokens]]
sha256 = "{hash_token("admin-token")}"
user = "ops"
roles = ["job-service-read", "job-service-write", "job-service-admin"]
"""


async def test_in_token_mode_the_processes_claim_with_the_token_jobd_gives_them(
    jobd: JobdLauncher, tmp_path: Path
) -> None:
    server = start(jobd, tmp_path, extra=ADMIN_TOKEN_ONLY)  # no JOBD_TOKEN in the pool's env
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer admin-token"}) as session:
        launched = [await launch(session, server.url, wake_up()) for _ in range(3)]
        jobs = await wait_all_terminal(session, server.url, launched, 60)
        assert {job["status"] for job in jobs.values()} == {"SUCCEEDED"}
        pool = await registry_pool(session, server.url)
        assert pool["jobs_finished"] == 3 and pool["start_backoff"] is None
        await assert_no_minted_token_shown(session, server)


async def test_a_process_printing_its_environment_shows_in_jobd_log_without_its_token(
    jobd: JobdLauncher, tmp_path: Path
) -> None:
    prints_its_environment = [sys.executable, "-c", "import os; print(dict(os.environ))"]
    config = tmp_path / "jobd.toml"
    config.write_text(
        f"""{ADMIN_TOKEN_ONLY}
[pool.REGISTRY]
max_workers = 1
command = {json.dumps(prints_its_environment)}
"""
    )
    server = jobd.start("--config", str(config), "--port", "0", "--db", str(tmp_path / "j.db"))
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer admin-token"}) as session:
        await launch(session, server.url, wake_up())

        async def printed() -> str | None:
            said = [
                line for line in server.stderr().splitlines() if "REGISTRY-p1 stdout: {" in line
            ]
            return said[0] if said else None

        line = await until(printed, what="the process's environment in jobd's log")
    assert "'JOBD_TOKEN': '<redacted>'" in line and "'JOBD_WORKER_ID': 'REGISTRY-p1'" in line
    assert not MINTED.search(server.stderr())


async def test_in_jwt_mode_the_processes_claim_with_the_token_jobd_gives_them(
    jobd: JobdLauncher, tmp_path: Path
) -> None:
    keys = Keys()
    pem = tmp_path / "realm.pem"
    pem.write_text(keys.public_pem)
    realm = f"""
[auth]
mode = "jwt"
public_key_file = "{pem}"
"""
    server = start(jobd, tmp_path, extra=realm)
    admin = keys.token("ops", roles=["job-service-read", "job-service-write", "job-service-admin"])
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {admin}"}) as session:
        launched = await launch(session, server.url, wake_up())
        [job] = (await wait_all_terminal(session, server.url, [launched], 60)).values()
        assert job["status"] == "SUCCEEDED", job
        await assert_no_minted_token_shown(session, server)
    # Any other bearer that is not a valid JWT is still refused.
    async with (
        aiohttp.ClientSession() as anonymous,
        anonymous.post(
            f"{server.url}/jobs/worker/claim",
            json={"job_type": "REGISTRY", "worker_id": "intruder"},
            headers={"Authorization": "Bearer jobd_" + "x" * 43},
        ) as response,
    ):
        assert response.status == 401
