"""Three `jobd serve` nodes on one PostgreSQL database behave as one job system."""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
from pathlib import Path

import aiohttp
import pytest

from tests.postgres import empty
from tests.process import JobdLauncher, JobdProcess

from .handlers import TALLY_CONFIG
from .support import Json, launch, wait_all_terminal

pytestmark = pytest.mark.acceptance

NODES = 3
MAX_WORKERS = 2
# Short leases so a killed node's jobs come back within the test.
CLUSTER_CONFIG = """
[queue]
lease_s = 2
rescue_interval_s = 0.5
poll_interval_s = 5

[pool]
max_workers = {max_workers}
concurrency = {concurrency}
"""


def write_config(folder: Path, max_workers: int, concurrency: int, extra: str = "") -> Path:
    config = folder / "cluster.toml"
    body = CLUSTER_CONFIG.format(max_workers=max_workers, concurrency=concurrency)
    config.write_text(body + TALLY_CONFIG + extra)
    (folder / "tally").mkdir(exist_ok=True)
    return config


@pytest.fixture
def database(postgres_database: str) -> str:
    """The test run's PostgreSQL database, emptied for this test."""
    empty(postgres_database)
    return postgres_database


def start_nodes(jobd: JobdLauncher, database: str, config: Path, count: int) -> list[JobdProcess]:
    return [
        jobd.start("--port", "0", "--db", database, "--config", str(config)) for _ in range(count)
    ]


def tally_body(folder: Path, hold_s: float = 0.02) -> Json:
    payload = {"dir": str(folder / "tally"), "hold_s": hold_s}
    return {"job_type": "EMAIL", "job_sub_type": "TALLY", "job_payload": payload}


async def launch_spread(
    session: aiohttp.ClientSession, urls: list[str], body: Json, count: int
) -> list[str]:
    """Launch `count` jobs, each on the next node in turn, 16 at a time."""
    gate = asyncio.Semaphore(16)
    nodes = itertools.cycle(urls)

    async def one(url: str) -> str:
        async with gate:
            return await launch(session, url, body)

    return list(await asyncio.gather(*(one(next(nodes)) for _ in range(count))))


async def email_workers(session: aiohttp.ClientSession, url: str) -> list[tuple[str, str]]:
    """The EMAIL pool's workers in the cluster, as `GET /admin/pool` shows them: (id, node)."""
    async with session.get(f"{url}/admin/pool") as response:
        pools = (await response.json())["pools"]
    (email,) = [pool for pool in pools if pool["job_type"] == "EMAIL"]
    return sorted((worker["worker_id"], worker["node"]) for worker in email["processes"])


def tally_log(folder: Path) -> list[tuple[str, int, str]]:
    lines = (folder / "tally" / "log").read_text().splitlines()
    return [(kind, int(running), session_id) for kind, running, session_id in map(str.split, lines)]


async def test_launches_on_any_node_succeed_exactly_once_within_the_cluster_cap(
    jobd: JobdLauncher, database: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, MAX_WORKERS, concurrency=1)
    nodes = start_nodes(jobd, database, config, NODES)
    async with aiohttp.ClientSession() as session:
        launched = await launch_spread(
            session, [node.url for node in nodes], tally_body(tmp_path), 60
        )
        # Every node answers for every job, wherever it was launched or ran.
        jobs = await wait_all_terminal(session, nodes[2].url, launched, 60)
        views = [await email_workers(session, node.url) for node in nodes]
    assert {job["status"] for job in jobs.values()} == {"SUCCEEDED"}
    # Every node's pool view shows the same cluster-wide workers, each with its node.
    assert views[0] == views[1] == views[2]
    assert 1 <= len(views[0]) <= MAX_WORKERS and all(node for _, node in views[0])
    log = tally_log(tmp_path)
    ends = collections.Counter(session_id for kind, _, session_id in log if kind == "end")
    assert ends == dict.fromkeys(launched, 1), "a job ran twice, or not at all"
    most = max(running for kind, running, _ in log if kind == "start")
    assert most <= MAX_WORKERS, f"{most} ran at once; the cluster cap is {MAX_WORKERS}"


async def test_a_killed_node_loses_no_acknowledged_launch_and_its_jobs_finish_elsewhere(
    jobd: JobdLauncher, database: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, max_workers=NODES, concurrency=4)
    nodes = start_nodes(jobd, database, config, NODES)
    victim, survivors = nodes[0], nodes[1:]
    body = tally_body(tmp_path, hold_s=0.3)
    async with aiohttp.ClientSession() as session:
        acknowledged = await launch_spread(session, [n.url for n in nodes], body, 45)
        # The victim holds jobs now (three slots for three nodes, each runs its share).
        await asyncio.sleep(0.3)
        victim.kill()
        acknowledged += await launch_spread(session, [n.url for n in survivors], body, 15)
        jobs = await wait_all_terminal(session, survivors[0].url, acknowledged, 60)
    assert {job["status"] for job in jobs.values()} == {"SUCCEEDED"}
    assert len(jobs) == len(set(acknowledged)) == 60


async def test_an_event_stream_on_one_node_sees_jobs_finished_on_another(
    jobd: JobdLauncher, database: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, MAX_WORKERS, concurrency=1)
    # The watching node runs no EMAIL jobs itself: they wait for outside workers there.
    watcher_config = tmp_path / "watcher.toml"
    watcher_config.write_text(config.read_text() + "\n[pool.EMAIL]\nexternal = true\n")
    watcher = jobd.start("--port", "0", "--db", database, "--config", str(watcher_config))
    runner = jobd.start("--port", "0", "--db", database, "--config", str(config))
    seen: list[str] = []
    async with aiohttp.ClientSession() as session:
        async with session.get(watcher.url + "/jobs/admin/events") as stream:
            session_id = await launch(session, runner.url, tally_body(tmp_path))
            async with asyncio.timeout(20):
                async for raw in stream.content:
                    line = raw.decode().strip()
                    if not line.startswith("data: "):
                        continue
                    job = json.loads(line.removeprefix("data: "))
                    if job["session_id"] == session_id:
                        seen.append(job["status"])
                        if job["status"] == "SUCCEEDED":
                            break
    assert seen[-1] == "SUCCEEDED"
    assert seen[0] in {"PENDING", "DEQUEUED", "IN_PROGRESS"}
