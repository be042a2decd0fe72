"""Operations through the real `jobd`: backup of a live database, JSON logs, metrics listener."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sqlite3
import subprocess
from pathlib import Path

import aiohttp
import pytest

from tests.process import JobdLauncher, jobd_environment

from .support import fetch_jobs, launch, launch_body, launch_many, wait_all_terminal

pytestmark = pytest.mark.acceptance


def run_backup(
    jobd: JobdLauncher, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [jobd.executable, "backup", *args],
        cwd=jobd.workdir,
        env=jobd_environment(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_a_backup_taken_under_load_restores_every_job(
    jobd: JobdLauncher, tmp_path: Path
) -> None:
    config = tmp_path / "jobd.toml"
    # REGISTRY jobs never start (their worker never finishes its cold start): they stay PENDING.
    config.write_text("[pool.REGISTRY]\ncold_start_s = 1e9\n")
    db, copy = tmp_path / "live.db", tmp_path / "copy.db"
    server = jobd.start("--port", "0", "--db", str(db), "--config", str(config))
    url = server.url
    async with aiohttp.ClientSession() as session:
        finished = await launch_many(session, url, 50)
        waiting = [await launch(session, url, launch_body("REGISTRY_WAKE_UP")) for _ in range(5)]
        await wait_all_terminal(session, url, finished, timeout_s=30)
        before = await fetch_jobs(session, url, [*finished, *waiting])

        # Keep launching while the backup runs: the server never stops.
        load = asyncio.create_task(launch_many(session, url, 200))
        result = await asyncio.to_thread(run_backup, jobd, str(copy), "--db", str(db))
        during = await load
        await wait_all_terminal(session, url, during, timeout_s=30)

    assert result.returncode == 0, result.stderr
    assert f"to {copy}" in result.stdout and " MB (" in result.stdout and " s" in result.stdout
    server.send(signal.SIGTERM)
    assert server.wait() == 0

    restored = jobd.start("--port", "0", "--db", str(copy), "--config", str(config))
    async with aiohttp.ClientSession() as session:
        after = await fetch_jobs(session, restored.url, [*finished, *waiting])
    for session_id, job in before.items():
        assert (after[session_id]["status"], after[session_id]["result"]) == (
            job["status"],
            job["result"],
        )
    assert {after[s]["status"] for s in waiting} == {"PENDING"}


def test_backup_refuses_what_it_cannot_do(jobd: JobdLauncher, tmp_path: Path) -> None:
    missing = run_backup(jobd, str(tmp_path / "out.db"), "--db", str(tmp_path / "none.db"))
    assert missing.returncode == 1 and "no database at" in missing.stderr
    assert not (tmp_path / "none.db").exists() and not (tmp_path / "out.db").exists()
    postgres = run_backup(jobd, str(tmp_path / "out.db"), "--db", "postgresql://db/jobd")
    assert postgres.returncode == 1 and "pg_dump" in postgres.stderr


def test_backup_refuses_an_empty_jobd_db(jobd: JobdLauncher, tmp_path: Path) -> None:
    """`JOBD_DB=$(cat missing) jobd backup` used to copy ./jobd.db, as if JOBD_DB were unset."""
    sqlite3.connect(jobd.workdir / "jobd.db").close()
    empty = run_backup(jobd, str(tmp_path / "out.db"), env={"JOBD_DB": ""})
    assert empty.returncode == 2, empty.stderr
    assert "JOBD_DB is set but empty: set it to a value for --db, or unset it" in empty.stderr
    assert not (tmp_path / "out.db").exists()
    given = run_backup(jobd, str(tmp_path / "out.db"), "--db", "jobd.db", env={"JOBD_DB": ""})
    assert given.returncode == 0, given.stderr  # the option needs no variable


async def test_json_log_lines_name_their_action(jobd: JobdLauncher, tmp_path: Path) -> None:
    server = jobd.start(
        "--port", "0", "--db", str(tmp_path / "j.db"), env={"JOBD_LOG_FORMAT": "json"}
    )
    async with aiohttp.ClientSession() as session:
        await wait_all_terminal(session, server.url, [await launch(session, server.url)], 30)
    server.send(signal.SIGTERM)
    assert server.wait() == 0
    lines = [json.loads(line) for line in server.stderr().splitlines() if line.startswith("{")]
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in lines)
    # A worker starting says which: its job type and id are fields of the line.
    starting = [entry for entry in lines if entry.get("action") == "worker_starting"]
    assert starting and all(
        entry["message"] == f"{entry['job_type']} worker {entry['worker_id']} starting"
        and entry["worker_id"].startswith(f"{entry['job_type']}-")
        for entry in starting
    )


def test_a_busy_metrics_address_is_one_clear_error(jobd: JobdLauncher, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "jobd.toml"
        config.write_text(f'[metrics]\nlisten = "127.0.0.1:{port}"\n')
        result = jobd.run("--port", "0", "--db", str(tmp_path / "m.db"), "--config", str(config))
    assert result.returncode == 2
    assert f"cannot listen for metrics on 127.0.0.1:{port}" in result.stderr
    # Bound before the database is opened: a start that cannot listen creates nothing.
    assert not any(path.name.startswith("m.db") for path in tmp_path.iterdir())


async def test_the_metrics_listener_serves_on_the_address_it_bound(
    jobd: JobdLauncher, tmp_path: Path
) -> None:
    config = tmp_path / "jobd.toml"
    config.write_text('[metrics]\nlisten = "127.0.0.1:0"\n')
    server = jobd.start("--port", "0", "--db", str(tmp_path / "m.db"), "--config", str(config))
    said = [line for line in server.stderr().splitlines() if "metrics without auth at" in line]
    [url] = [line.rsplit(" ", 1)[1] for line in said]
    assert url.startswith("http://127.0.0.1:") and not url.startswith("http://127.0.0.1:0/")
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert "jobd_http_requests_total" in await response.text()
    server.send(signal.SIGTERM)
    assert server.wait() == 0


def test_a_metrics_address_on_jobd_s_own_port_is_one_clear_error(
    jobd: JobdLauncher, tmp_path: Path
) -> None:
    with socket.socket() as probe:  # a port free now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "jobd.toml"
    config.write_text(f'[metrics]\nlisten = "127.0.0.1:{port}"\n')
    result = jobd.run("--port", str(port), "--db", str(tmp_path / "m.db"), "--config", str(config))
    assert result.returncode == 2
    assert result.stderr == (
        f"jobd: error: cannot listen for metrics on 127.0.0.1:{port}: jobd serves its API on "
        "that port; give it a port of its own\n"
    )
    assert not any(path.name.startswith("m.db") for path in tmp_path.iterdir())
