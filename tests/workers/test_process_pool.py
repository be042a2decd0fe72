"""Process pools: jobd starts worker processes as jobs wait, up to `max_workers`, shows them
provisioning until their first claim, replaces ones that die, and stops them at shutdown."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from provena_jobd.client import JobdClient
from provena_jobd.clock import FakeClock
from provena_jobd.config import REDACTED, flatten, from_dict
from provena_jobd.errors import ConfigError
from provena_jobd.identity import PROCESS_WORKER_USER, Right, hash_token
from provena_jobd.models import JobStatus, JobSubType
from provena_jobd.pool_models import PoolSnapshot
from provena_jobd.testing import JobdServerFactory, JobdTestServer
from provena_jobd.worker_protocol import ClaimRequest
from provena_jobd.workers.process_pool import ProcessPool
from provena_jobd.workers.shutdown import ShutdownTally
from tests.client.test_cli import jobd as run_cli
from tests.helpers import eventually, process_alive, settle
from tests.workers.pool_helpers import MakePool, Starter, holds, launch

WAKE = ("REGISTRY", "REGISTRY_WAKE_UP")
# A worker that never claims: it stays in its cold start for as long as it lives.
NEVER_CLAIMS = [sys.executable, "-c", "import time; time.sleep(60)"]
DIES_AT_ONCE = [sys.executable, "-c", "raise SystemExit(3)"]


async def registry(client: JobdClient) -> PoolSnapshot:
    """The REGISTRY pool's snapshot."""
    return next(p for p in (await client.pool()).pools if p.job_type == "REGISTRY")


async def test_processes_start_as_jobs_wait_up_to_max_workers_and_provision_until_they_claim(
    jobd_server_factory: JobdServerFactory,
) -> None:
    jobd = await jobd_server_factory(
        pool={"REGISTRY": {"command": NEVER_CLAIMS, "max_workers": 2, "env": {"SECRET": "s3"}}}
    )
    launched = [await jobd.client.launch(*WAKE, {}) for _ in range(5)]

    async def two_provisioning() -> PoolSnapshot | None:
        pool = await registry(jobd.client)
        return pool if pool.workers["provisioning"] == 2 else None

    pool = await eventually(two_provisioning, what="two processes provisioning")
    pids = [p.pid for p in pool.processes]
    assert all(pid is not None and process_alive(pid) for pid in pids)
    assert {p.state for p in pool.processes} == {"provisioning"}
    assert pool.cold_starts == 2 and pool.waiting == 5
    assert pool.settings.env == {"SECRET": "<redacted>"}  # a worker's token is never shown
    # `jobd pool` lists them with their pids.
    ran = await run_cli("pool", url=jobd.url)
    assert ran.status == 0, ran
    process_rows = [line.split() for line in ran.out.splitlines() if line.startswith("REGISTRY ")]
    assert sorted(int(row[2]) for row in process_rows if len(row) == 5) == sorted(
        pid for pid in pids if pid is not None
    )
    for launched_job in launched:  # nothing runs them in jobd itself
        assert (await jobd.client.fetch(launched_job.session_id)).status is JobStatus.PENDING

    # Shutting down stops the processes jobd started.
    await jobd.server.stop_outside_workers(grace_s=0)
    assert not any(process_alive(pid) for pid in pids if pid is not None)
    assert (await registry(jobd.client)).processes == []


async def test_a_process_that_dies_is_replaced_after_a_pause_that_admin_pool_shows(
    jobd_server_factory: JobdServerFactory,
) -> None:
    jobd = await jobd_server_factory(
        pool={"REGISTRY": {"command": DIES_AT_ONCE, "max_workers": 1}},
        queue={"poll_interval_s": 0.05},
    )
    await jobd.client.launch(*WAKE, {})

    async def backing_off() -> PoolSnapshot | None:
        pool = await registry(jobd.client)
        return pool if pool.start_backoff is not None else None

    pool = await eventually(backing_off, what="a failed start in /admin/pool")
    backoff = pool.start_backoff
    assert backoff is not None and (backoff.failures, backoff.exit_code) == (1, 3)
    ran = await run_cli("pool", url=jobd.url)
    assert "REGISTRY: 1 worker process start failed in a row (the last exited with code 3)" in (
        ran.out
    )

    # The supervisor wakes when the pause is over (1 s, then 2 s) to start the next.
    async def replaced() -> bool:
        return (await registry(jobd.client)).cold_starts >= 2

    await eventually(replaced, within_s=10, what="the dead worker replaced")


async def test_no_process_starts_while_no_job_waits(
    jobd_server_factory: JobdServerFactory,
) -> None:
    jobd = await jobd_server_factory(
        pool={"REGISTRY": {"command": NEVER_CLAIMS}}, queue={"poll_interval_s": 0.05}
    )
    # Other job types still run inside jobd meanwhile.
    launched = await jobd.client.launch("EMAIL", "EMAIL_WAKE_UP", {})
    assert (await jobd.client.wait(launched.session_id, timeout_s=10)).status is JobStatus.SUCCEEDED
    pool = await registry(jobd.client)
    assert (pool.cold_starts, pool.processes) == (0, [])


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"cwd": "/tmp"}, "pool.REGISTRY: cwd and env need command = [...]"),
        ({"env": {"A": "b"}}, "pool.REGISTRY: cwd and env need command = [...]"),
        ({"command": "python w.py"}, "pool.REGISTRY.command: Expected `array`"),
    ],
)
def test_process_settings_are_checked(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_dict({"pool": {"REGISTRY": table}})
    assert message in caught.value.message


def test_admin_config_never_shows_a_worker_process_environment() -> None:
    settings = from_dict({"pool": {"REGISTRY": {"command": ["w"], "env": {"JOBD_TOKEN": "t0k"}}}})
    shown = dict(flatten(settings))
    assert shown["pool.REGISTRY.env.JOBD_TOKEN"] == REDACTED
    assert shown["pool.REGISTRY.command"] == "['w']"


async def test_no_process_starts_for_a_paused_type(
    jobd_server_factory: JobdServerFactory,
) -> None:
    jobd = await jobd_server_factory(
        pool={"REGISTRY": {"command": NEVER_CLAIMS}}, queue={"poll_interval_s": 0.05}
    )
    await jobd.client.set_paused("REGISTRY", True)
    await jobd.client.launch(*WAKE, {})
    # A later EMAIL job running through shows the pools have looked several times meanwhile.
    launched = await jobd.client.launch("EMAIL", "EMAIL_WAKE_UP", {})
    assert (await jobd.client.wait(launched.session_id, timeout_s=10)).status is JobStatus.SUCCEEDED
    pool = jobd.server.pools["REGISTRY"]
    assert isinstance(pool, ProcessPool)
    for _ in range(5):
        await pool.tick()
    assert (await registry(jobd.client)).cold_starts == 0
    await jobd.client.set_paused("REGISTRY", False)

    async def started() -> bool:
        return (await registry(jobd.client)).cold_starts == 1

    await eventually(started, what="a process once the type is resumed")


# A worker that writes the JOBD_TOKEN it was given (or "-") to the file named by its argument.
WRITES_TOKEN = [
    sys.executable,
    "-c",
    "import os, sys; path = sys.argv[1]; open(path + '.tmp', 'w').write("
    "os.environ.get('JOBD_TOKEN', '-')); os.replace(path + '.tmp', path)",
]
ADMIN_TOKEN = "jobd_admin-t0ken"
TOKEN_AUTH = {
    "mode": "token",
    "tokens": [
        {
            "sha256": hash_token(ADMIN_TOKEN),
            "user": "ops",
            "roles": ["job-service-read", "job-service-write", "job-service-admin"],
        }
    ],
}


def read_if_there(path: Path) -> str | None:
    """The file's text, or None while it does not exist."""
    return path.read_text() if path.exists() else None


async def token_given(jobd: JobdTestServer, seen: Path) -> str:
    """Launch a REGISTRY job and return the JOBD_TOKEN its worker process was started with."""
    await jobd.client.launch(*WAKE, {})

    async def written() -> str | None:
        return await asyncio.to_thread(read_if_there, seen)

    return await eventually(written, what="a worker process to write its token")


async def test_with_auth_on_jobd_gives_its_processes_a_token_for_the_worker_role_only(
    jobd_server_factory: JobdServerFactory, tmp_path: Path
) -> None:
    seen = tmp_path / "token"
    jobd = await jobd_server_factory(
        auth=TOKEN_AUTH,
        pool={"REGISTRY": {"command": [*WRITES_TOKEN, str(seen)]}},
        token=ADMIN_TOKEN,
    )
    token = await token_given(jobd, seen)
    assert token.startswith("jobd_") and len(token) > 40 and token != ADMIN_TOKEN
    caller = await jobd.server.authenticator.authenticate(f"Bearer {token}")
    assert (caller.username, caller.rights) == (PROCESS_WORKER_USER, frozenset({Right.WORKER}))
    assert caller.token is None  # check-access never echoes it
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        claim = {"job_type": "REGISTRY", "worker_id": "REGISTRY-p9", "wait_s": 0}
        async with session.post(f"{jobd.url}/jobs/worker/claim", json=claim) as response:
            assert response.status == 200  # it may run jobs...
        async with session.get(f"{jobd.url}/admin/pool") as response:
            assert response.status == 401  # ...and nothing else
    # The configured tokens still work, and nothing shows the token made for the processes.
    shown = msgspec.json.encode(await jobd.client.pool()).decode()
    shown += "".join(f"{k}={v}" for k, v in flatten(jobd.server.settings))
    assert token not in shown


@pytest.mark.parametrize(
    ("auth", "env", "expected"),
    [
        pytest.param(TOKEN_AUTH, {"JOBD_TOKEN": "jobd_from-env"}, "jobd_from-env", id="env wins"),
        pytest.param({"mode": "none"}, {}, "-", id="no token without auth"),
    ],
)
async def test_the_token_given_is_the_pool_env_s_or_none_without_auth(
    jobd_server_factory: JobdServerFactory,
    tmp_path: Path,
    auth: dict[str, Any],
    env: dict[str, str],
    expected: str,
) -> None:
    seen = tmp_path / "token"
    jobd = await jobd_server_factory(
        auth=auth,
        pool={"REGISTRY": {"command": [*WRITES_TOKEN, str(seen)], "env": env}},
        token=ADMIN_TOKEN,
    )
    assert await token_given(jobd, seen) == expected


async def test_a_shutdown_gives_a_busy_process_its_grace_on_jobd_s_clock(
    make_pool: MakePool, clock: FakeClock
) -> None:
    server, pool = await make_pool(NEVER_CLAIMS, max_workers=1)
    session_id = await launch(server, JobSubType.REGISTRY_WAKE_UP)
    await pool.tick()
    [worker] = pool.processes
    claim = ClaimRequest(job_type="REGISTRY", worker_id=worker.worker_id)
    assert len(await server.gateway.claim(claim)) == 1  # as its first HTTP claim would
    draining = asyncio.create_task(pool.drain(grace_s=30))
    await settle()
    await clock.advance(29)
    await settle()
    assert not draining.done()  # the job still has a second of its grace
    assert worker.process.returncode is None
    await clock.advance(1)
    await asyncio.wait_for(draining, 5)
    assert worker.process.returncode is not None  # stopped once the grace was over
    job = await server.store.get(session_id)
    assert job is not None and job.status is JobStatus.PENDING  # back in the queue


async def test_the_stop_summary_counts_a_process_pool_s_job_sent_back(start: Starter) -> None:
    # `jobd serve` stops outside workers first, then everything: two drains of this pool.
    server = await start(pool={"REGISTRY": {"command": NEVER_CLAIMS, "max_workers": 1}})
    pool = server.pools["REGISTRY"]
    assert isinstance(pool, ProcessPool)
    pool.jobd_url = "http://127.0.0.1:9"  # no HTTP here: its process never calls jobd
    session_id = await launch(server, JobSubType.REGISTRY_WAKE_UP)
    # The server's own pool: its supervisor starts the process (a tick here would race it).
    await eventually(lambda: holds(len(pool.processes) == 1), what="a process to start")
    [worker] = pool.processes
    claim = ClaimRequest(job_type="REGISTRY", worker_id=worker.worker_id)
    assert len(await server.gateway.claim(claim)) == 1
    await server.stop_outside_workers(grace_s=0)
    job = await server.store.get(session_id)
    assert job is not None and job.status is JobStatus.PENDING
    await server.stop(grace_s=0)
    assert server.shutdown_tally() == ShutdownTally(finished=0, returned=1)


async def test_a_process_that_dies_in_the_grace_period_finished_nothing(
    make_pool: MakePool, clock: FakeClock
) -> None:
    dies_soon = [sys.executable, "-c", "import time; time.sleep(0.2)"]
    server, pool = await make_pool(dies_soon, max_workers=1)
    await launch(server, JobSubType.REGISTRY_WAKE_UP)
    await pool.tick()
    [worker] = pool.processes
    claim = ClaimRequest(job_type="REGISTRY", worker_id=worker.worker_id)
    assert len(await server.gateway.claim(claim)) == 1
    draining = asyncio.create_task(pool.drain(grace_s=30))
    await settle()
    await worker.process.wait()  # it dies holding the job (left to the rescuer)
    await clock.advance(server.settings.queue.poll_interval_s)
    await asyncio.wait_for(draining, 5)
    assert pool.shutdown == ShutdownTally(finished=0, returned=0)
