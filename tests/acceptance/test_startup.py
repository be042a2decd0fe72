"""Starting `jobd serve`: zero config, the sample config, the environment, and clear refusals."""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.process import REPO, JobdLauncher, JobdProcess

pytestmark = pytest.mark.acceptance

URL = re.compile(r"^http://127\.0\.0\.1:(\d+)$")
HEALTH = {"message": "Health check successful."}


async def get_health(url: str) -> tuple[int, str, object]:
    """`GET /`: status, content type and decoded body."""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/") as response:
        return response.status, response.content_type, await response.json()


def assert_listening_url(jobd: JobdProcess) -> int:
    """The printed URL is a loopback http URL on a real (non-zero) port; returns the port."""
    match = URL.match(jobd.url)
    assert match, f"first stdout line is not a loopback URL: {jobd.url!r}"
    port = int(match.group(1))
    assert port != 0
    return port


def stop_cleanly(jobd: JobdProcess) -> None:
    """SIGTERM, then check the exit status and that stdout held only the URL."""
    jobd.send(signal.SIGTERM)
    assert jobd.wait() == 0, jobd.stderr()
    assert jobd.rest_of_stdout() == "", "stdout must hold the URL alone"


async def test_zero_config_in_an_empty_folder_serves_and_creates_jobd_db(
    jobd: JobdLauncher, tmp_path: Path
) -> None:
    workdir = tmp_path / "empty"
    workdir.mkdir()

    server = jobd.start("--port", "0", cwd=workdir)

    assert_listening_url(server)
    assert (workdir / "jobd.db").is_file()
    assert await get_health(server.url) == (200, "application/json", HEALTH)
    stop_cleanly(server)


async def test_sample_config_of_the_repository_starts(jobd: JobdLauncher, tmp_path: Path) -> None:
    sample = REPO / "jobd.toml"
    assert sample.is_file(), "the repository's sample jobd.toml is missing"

    server = jobd.start(
        "--config", str(sample), "--port", "0", "--db", str(tmp_path / "jobd.db"), cwd=tmp_path
    )

    assert_listening_url(server)
    assert (tmp_path / "jobd.db").is_file()
    assert await get_health(server.url) == (200, "application/json", HEALTH)
    stop_cleanly(server)


async def test_environment_variables_stand_in_for_the_flags(
    jobd: JobdLauncher, tmp_path: Path
) -> None:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    db = tmp_path / "elsewhere" / "from-env.db"
    db.parent.mkdir()

    server = jobd.start(cwd=workdir, env={"JOBD_PORT": "0", "JOBD_DB": str(db)})

    assert assert_listening_url(server) != 8421, "JOBD_PORT=0 must pick a free port"
    assert db.is_file(), "JOBD_DB must name the database file"
    assert not (workdir / "jobd.db").exists(), "the default ./jobd.db must not be created"
    assert await get_health(server.url) == (200, "application/json", HEALTH)
    stop_cleanly(server)


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port another socket is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


CONFIG_ERRORS = {
    "unknown key in a table": ("[pool]\nmax_wrokers = 2\n", "max_wrokers"),
    "unknown key in a job type's table": ("[pool.EMAIL]\ncold_start = 1.0\n", "cold_start"),
    "unknown top-level key": ("verbose = true\n", "verbose"),
    "unknown section": ("[sever]\nport = 1\n", "sever"),
    "invalid TOML": ("[pool\n", "jobd.toml"),
    "wrong value type": ('[server]\nshutdown_grace_s = "soon"\n', "shutdown_grace_s"),
    # Pasted without [auth] mode = "token", tokens were ignored and anyone had every role.
    "tokens without token mode": (
        f'[[auth.tokens]]\nsha256 = "{"a" * 64}"\nuser = "svc"\n',
        '[[auth.tokens]] are configured but auth.mode is "none"',
    ),
}


@pytest.mark.parametrize("case", sorted(CONFIG_ERRORS))
def test_a_bad_config_file_is_one_line_naming_the_problem(
    jobd: JobdLauncher, tmp_path: Path, case: str
) -> None:
    text, named = CONFIG_ERRORS[case]
    config = tmp_path / "jobd.toml"
    config.write_text(text)

    result = jobd.run("--config", str(config), "--port", "0", "--db", str(tmp_path / "x.db"))

    assert_one_line_error(result.returncode, result.stdout, result.stderr, named)
    assert result.returncode == 2  # as every startup error
    assert not (tmp_path / "x.db").exists(), "a refused start must not create the database"


def test_a_missing_config_file_is_one_line(jobd: JobdLauncher, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "jobd.toml"

    result = jobd.run("--config", str(missing), "--port", "0", "--db", str(tmp_path / "x.db"))

    assert_one_line_error(result.returncode, result.stdout, result.stderr, "not found")
    assert str(missing) in result.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_a_public_host_without_auth_is_refused(
    jobd: JobdLauncher, tmp_path: Path, host: str
) -> None:
    result = jobd.run("--host", host, "--port", "0", "--db", str(tmp_path / "x.db"))

    assert_one_line_error(result.returncode, result.stdout, result.stderr, "--insecure")
    assert host in result.stderr
    assert not (tmp_path / "x.db").exists()


def test_a_database_in_a_missing_folder_is_one_line(jobd: JobdLauncher, tmp_path: Path) -> None:
    db = tmp_path / "no-such-folder" / "jobd.db"

    result = jobd.run("--port", "0", "--db", str(db))

    assert_one_line_error(result.returncode, result.stdout, result.stderr, "no-such-folder")
    assert not db.parent.exists(), "jobd must not create folders it was not asked to"


def test_a_file_that_is_not_a_database_is_one_line(jobd: JobdLauncher, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("These are my notes, not a database. " * 10)

    result = jobd.run("--port", "0", "--db", str(notes))

    assert_one_line_error(result.returncode, result.stdout, result.stderr, "notes.txt")
    assert notes.read_text() == "These are my notes, not a database. " * 10


def test_a_folder_given_as_the_database_is_one_line(jobd: JobdLauncher, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()

    result = jobd.run("--port", "0", "--db", str(folder))

    assert_one_line_error(result.returncode, result.stdout, result.stderr, "data")


def test_a_database_locked_by_another_process_is_one_line(
    jobd: JobdLauncher, db_path: Path
) -> None:
    with contextlib.closing(sqlite3.connect(db_path, isolation_level=None)) as other:
        other.execute("PRAGMA journal_mode = WAL")
        other.execute("CREATE TABLE mine (x)")
        other.execute("BEGIN IMMEDIATE")  # e.g. a sqlite3 shell in the middle of a change
        other.execute("INSERT INTO mine VALUES (1)")

        result = jobd.run("--port", "0", "--db", str(db_path))

        other.execute("ROLLBACK")
    assert_one_line_error(result.returncode, result.stdout, result.stderr, str(db_path))


def test_a_port_in_use_is_one_line(jobd: JobdLauncher, tmp_path: Path, busy_port: int) -> None:
    result = jobd.run("--port", str(busy_port), "--db", str(tmp_path / "x.db"))

    assert_one_line_error(result.returncode, result.stdout, result.stderr, str(busy_port))


def assert_one_line_error(returncode: int, stdout: str, stderr: str, named: str) -> None:
    """A refused start: non-zero exit, nothing on stdout, one stderr line naming `named`."""
    assert returncode != 0, f"jobd should have refused to start; stderr: {stderr!r}"
    assert stdout == "", f"nothing (no URL) belongs on stdout: {stdout!r}"
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    assert named in lines[0], f"the message should name {named!r}: {lines[0]!r}"
