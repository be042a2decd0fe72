"""The database file: jobd creates one only where none exists, refuses any file it cannot use
as its own without changing it, and allows one jobd per file, whatever the name (issue 18)."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
from pathlib import Path

import pytest

from tests.process import JobdLauncher

from .test_operations import run_backup

pytestmark = pytest.mark.acceptance


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file in `folder` and its bytes; not the launcher's logs nor jobd's pid note."""
    return {
        p.name: p.read_bytes()
        for p in folder.iterdir()
        if p.is_file() and not p.name.endswith((".stderr", ".lock"))
    }


def assert_refused(result_code: int, stdout: str, stderr: str, *named: str) -> None:
    """Exit status 2, nothing on stdout, one stderr line naming each of `named`."""
    assert result_code == 2, f"exit {result_code}; stderr: {stderr!r}"
    assert stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{stderr}"
    for name in named:
        assert name in lines[0], lines[0]


def make_database(jobd: JobdLauncher, db: Path, jobs: int = 0) -> None:
    """A real jobd database, left by a jobd that stopped cleanly."""
    server = jobd.start("--port", "0", "--db", str(db), "--config", str(_cold(db.parent)))
    if jobs:
        import asyncio

        import aiohttp

        from .support import launch_many

        async def go() -> None:
            async with aiohttp.ClientSession() as session:
                await launch_many(session, server.url, jobs)

        asyncio.run(go())
    server.send(signal.SIGTERM)
    assert server.wait() == 0


def _cold(folder: Path) -> Path:
    config = folder / "cold.toml"
    config.write_text("[pool]\ncold_start_s = 3600\n")
    return config


def test_an_empty_file_is_refused_and_left_as_it_was(jobd: JobdLauncher, tmp_path: Path) -> None:
    db = tmp_path / "jobd.db"
    db.write_bytes(b"")
    (tmp_path / "jobd.db-wal").write_bytes(b"acknowledged launches live here" * 100)
    before = snapshot(tmp_path)

    result = jobd.run("--port", "0", "--db", str(db))

    assert_refused(result.returncode, result.stdout, result.stderr, str(db), "empty")
    assert snapshot(tmp_path) == before


def test_a_foreign_sqlite_database_is_refused_and_left_as_it_was(
    jobd: JobdLauncher, tmp_path: Path
) -> None:
    db = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(db)) as other:
        other.execute("CREATE TABLE customers (name TEXT)")
        other.execute("INSERT INTO customers VALUES ('ada')")
        other.commit()
    before = snapshot(tmp_path)

    result = jobd.run("--port", "0", "--db", str(db))

    assert_refused(result.returncode, result.stdout, result.stderr, str(db), "not a jobd database")
    assert snapshot(tmp_path) == before


def test_a_corrupt_database_is_one_line_and_exit_2_promptly(
    jobd: JobdLauncher, tmp_path: Path
) -> None:
    db = tmp_path / "jobd.db"
    make_database(jobd, db, jobs=300)
    data = bytearray(db.read_bytes())
    page = 4096
    assert len(data) > 4 * page
    data[2 * page : len(data)] = os.urandom(len(data) - 2 * page)  # every page after the first
    db.write_bytes(bytes(data))
    before = snapshot(tmp_path)

    result = jobd.run("--port", "0", "--db", str(db))  # bounded: must not hang

    assert_refused(result.returncode, result.stdout, result.stderr, str(db))
    assert snapshot(tmp_path) == before


async def test_a_second_jobd_through_a_symlink_is_refused(
    jobd: JobdLauncher, tmp_path: Path
) -> None:
    db = tmp_path / "jobd.db"
    first = jobd.start("--port", "0", "--db", str(db))
    alias = tmp_path / "alias.db"
    alias.symlink_to(db)

    result = jobd.run("--port", "0", "--db", str(alias))

    assert_refused(result.returncode, result.stdout, result.stderr, "in use by another jobd")
    assert f"pid {first.pid}" in result.stderr


async def test_a_second_jobd_through_a_hard_link_is_refused(
    jobd: JobdLauncher, tmp_path: Path
) -> None:
    db = tmp_path / "jobd.db"
    first = jobd.start("--port", "0", "--db", str(db))
    twin = tmp_path / "twin.db"
    os.link(db, twin)

    result = jobd.run("--port", "0", "--db", str(twin))

    assert_refused(result.returncode, result.stdout, result.stderr, "in use by another jobd")
    assert f"pid {first.pid}" in result.stderr


def test_a_database_with_two_names_is_refused_even_when_idle(
    jobd: JobdLauncher, tmp_path: Path
) -> None:
    # SQLite keeps the WAL beside the name it opens: two names would mean two WALs.
    db = tmp_path / "jobd.db"
    make_database(jobd, db)
    os.link(db, tmp_path / "twin.db")

    result = jobd.run("--port", "0", "--db", str(db))

    assert_refused(result.returncode, result.stdout, result.stderr, str(db), "hard link")


def test_a_new_database_and_its_backup_are_readable_by_their_owner_only(
    jobd: JobdLauncher, tmp_path: Path
) -> None:
    db = tmp_path / "jobd.db"
    server = jobd.start("--port", "0", "--db", str(db))
    try:  # the jobs hold their payloads and results
        for name in ("jobd.db", "jobd.db-wal", "jobd.db-shm"):
            assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name
        backup = tmp_path / "copy.db"
        copied = run_backup(jobd, str(backup), "--db", str(db))
        assert copied.returncode == 0, copied.stderr
        assert backup.stat().st_mode & 0o777 == 0o600
    finally:
        server.send(signal.SIGTERM)
        assert server.wait() == 0


def test_an_existing_database_keeps_its_permissions(jobd: JobdLauncher, tmp_path: Path) -> None:
    db = tmp_path / "jobd.db"
    first = jobd.start("--port", "0", "--db", str(db))
    first.send(signal.SIGTERM)
    assert first.wait() == 0
    db.chmod(0o640)  # its owner's choice, e.g. for a reporting group
    server = jobd.start("--port", "0", "--db", str(db))
    server.send(signal.SIGTERM)
    assert server.wait() == 0
    assert db.stat().st_mode & 0o777 == 0o640
