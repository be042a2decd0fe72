"""What a newcomer meets running `jobd serve`: where its files go, one-line startup errors,
and a Ctrl-C that says what it waits for."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.process import REPO, JobdLauncher, JobdProcess

from .handlers import HOLD_CONFIG
from .support import fetch_job, launch, poll, statuses_in_db
from .test_startup import busy_port as busy_port_fixture

pytestmark = pytest.mark.acceptance
busy_port = busy_port_fixture  # a loopback port another socket listens on

EMAIL = {
    "job_type": "EMAIL",
    "job_sub_type": "SEND_EMAIL",
    "job_payload": {"email_to": "a@example.org", "subject": "s", "body": "b", "reason": "r"},
}


async def finished(url: str, session_id: str) -> str:
    """Wait until a job has finished; its status."""
    async with aiohttp.ClientSession() as session:
        job = await poll(
            lambda: fetch_job(session, url, session_id),
            lambda job: job["status"] in {"SUCCEEDED", "FAILED"},
            10,
            "the job to finish",
        )
    return str(job["status"])


async def test_a_config_elsewhere_keeps_its_database_beside_it(
    jobd: JobdLauncher, tmp_path: Path
) -> None:
    etc, cwd = tmp_path / "etc", tmp_path / "somewhere-else"
    etc.mkdir()
    cwd.mkdir()
    (etc / "jobd.toml").write_text('[storage]\ndb = "jobs.db"\n')

    server = jobd.start("--config", "../etc/jobd.toml", "--port", "0", cwd=cwd)
    async with aiohttp.ClientSession() as session:
        session_id = await launch(session, server.url, EMAIL)
    assert await finished(server.url, session_id) == "SUCCEEDED"
    server.send(signal.SIGTERM)
    assert server.wait() == 0

    assert (etc / "jobs.db").is_file()
    assert len(list((etc / "jobs.db-files" / "outbox").iterdir())) == 1
    assert list(cwd.iterdir()) == []


async def test_working_files_stay_beside_the_database(jobd: JobdLauncher, tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()

    server = jobd.start("--port", "0", cwd=checkout)
    async with aiohttp.ClientSession() as session:
        session_id = await launch(session, server.url, EMAIL)
    assert await finished(server.url, session_id) == "SUCCEEDED"
    assert (checkout / "jobd.db.lock").exists()  # held while it serves
    server.send(signal.SIGINT)
    assert server.wait() == 0, server.stderr()

    # Everything jobd wrote matches `jobd.db*`; a clean exit leaves no .lock behind.
    assert {path.name for path in checkout.iterdir()} == {"jobd.db", "jobd.db-files"}
    [email] = (checkout / "jobd.db-files" / "outbox").iterdir()
    assert email.suffix == ".eml"


BAD_STARTS = {
    "port not a number": (["--port", "abc"], {}, "--port: 'abc' is not a port number"),
    "port out of range": (["--port", "70000"], {}, "'70000' is not a port number"),
    "JOBD_PORT not a number": ([], {"JOBD_PORT": "abc"}, "JOBD_PORT: 'abc' is not a port"),
    # A bad value from a variable is said under the variable's name, as JOBD_PORT's is.
    "JOBD_DURABILITY not a choice": (
        [],
        {"JOBD_DURABILITY": "fast"},
        "Invalid value for JOBD_DURABILITY: 'fast' is not one of 'full', 'normal'.",
    ),
    "--durability not a choice": (
        ["--durability", "fast"],
        {},
        "Invalid value for '--durability': 'fast' is not one of",
    ),
    "JOBD_INSECURE not a boolean": (
        [],
        {"JOBD_INSECURE": "maybe"},
        "Invalid value for JOBD_INSECURE: 'maybe' is not a valid boolean. "
        "Recognized values: 0, 1, f, false, n, no, off, on, t, true, y, yes (see",
    ),
    # Set but empty (`JOBD_PORT=$(cat missing)`) is refused, as JOBD_URL is: it quietly meant
    # the default.
    "JOBD_PORT empty": (
        [],
        {"JOBD_PORT": ""},
        "JOBD_PORT is set but empty: set it to a value for --port, or unset it to use the default",
    ),
    "JOBD_DB empty": ([], {"JOBD_DB": ""}, "JOBD_DB is set but empty: set it to a value for --db"),
    "JOBD_CONFIG empty": ([], {"JOBD_CONFIG": ""}, "JOBD_CONFIG is set but empty"),
    # ... unless the option is given: then the start goes on (to a host it cannot listen on).
    "JOBD_PORT empty, --port given": (
        ["--port", "0", "--host", "192.0.2.1"],
        {"JOBD_PORT": ""},
        "cannot listen on 192.0.2.1:0",
    ),
    "ephemeral with a db": (["--ephemeral", "--db", "x.db"], {}, "do not combine it with --db"),
    "unknown host": (["--host", "no-such-host.invalid"], {}, "no-such-host.invalid: unknown host"),
    "unknown option": (["--prot", "0"], {}, "No such option '--prot'"),
    "database URL jobd lacks": (["--db", "mysql://x/y"], {}, "'mysql://x/y' is a mysql:// URL"),
    # 192.0.2.1 is reserved for documentation: never an address of this machine.
    "host not on this machine": (["--host", "192.0.2.1"], {}, "cannot listen on 192.0.2.1:8421"),
}


@pytest.mark.parametrize("case", sorted(BAD_STARTS))
def test_every_bad_start_is_one_line_and_creates_nothing(
    jobd: JobdLauncher, tmp_path: Path, case: str
) -> None:
    args, env, message = BAD_STARTS[case]
    cwd = tmp_path / "cwd"
    cwd.mkdir()

    result = jobd.run(*args, cwd=cwd, env=env)

    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("jobd: error: ")
    assert message in result.stderr
    assert "auth mode" not in result.stderr
    assert list(cwd.iterdir()) == []


def test_a_port_in_use_creates_no_database_and_hints_port_0_for_jobd_and_make(
    jobd: JobdLauncher, tmp_path: Path, busy_port: int
) -> None:
    result = jobd.run("--port", str(busy_port), cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr == (
        f"jobd: error: cannot listen on 127.0.0.1:{busy_port}: Address already in use "
        "(is another jobd running? port 0 picks a free one: --port 0, or JOBD_PORT=0 make "
        "serve)\n"
    )
    assert not any(path.name.startswith("jobd.db") for path in tmp_path.iterdir())


async def test_ctrl_c_says_what_it_waits_for_and_a_second_stops_at_once(
    jobd: JobdLauncher, tmp_path: Path, db_path: Path
) -> None:
    config = tmp_path / "hold.toml"
    config.write_text("[server]\nshutdown_grace_s = 60.0\n" + HOLD_CONFIG)
    runs, go = tmp_path / "runs.txt", tmp_path / "go"
    body = {
        "job_type": "EMAIL",
        "job_sub_type": "HOLD",
        "job_payload": {"runs": str(runs), "go": str(go)},
    }
    server = jobd.start("--config", str(config), "--port", "0", "--db", str(db_path))
    async with aiohttp.ClientSession() as session:
        held = await launch(session, server.url, body)
        await poll(
            lambda: fetch_job(session, server.url, held),
            lambda job: job["status"] == "IN_PROGRESS",
            10,
            "the job to run",
        )

    server.send(signal.SIGINT)
    waiting = (
        "jobd: shutting down: waiting up to 60 s for 1 running job to finish "
        "(Ctrl-C again stops now; unfinished jobs return to PENDING)"
    )

    async def said() -> bool:
        return waiting in server.stderr()

    await poll(said, bool, 10, "the shutdown message")
    asked = time.monotonic()
    server.send(signal.SIGINT)
    assert server.wait() == 0, server.stderr()
    assert time.monotonic() - asked < 10  # not the 60 s grace
    assert "jobd: stopping now; unfinished jobs return to PENDING" in server.stderr()
    assert server.stderr().splitlines()[-1] == "jobd: stopped (1 job went back to PENDING)"
    assert statuses_in_db(db_path) == {held: "PENDING"}


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_make_serve_prints_the_url_first_on_stdout(tmp_path: Path) -> None:
    venv = Path(sys.executable).parent.parent  # this venv, taken as installed (-o)
    # As from a shell: run by `make test`, make's own variables would make this one a
    # sub-make, which prints "make[1]: Entering directory ..." first.
    shell = {k: v for k, v in os.environ.items() if k not in {"MAKELEVEL", "MAKEFLAGS", "MFLAGS"}}
    stderr_path = tmp_path / "make.stderr"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            ["make", "serve", f"VENV={venv}", "-o", f"{venv}/.runtime"],
            cwd=REPO,
            env={**shell, "JOBD_PORT": "0", "JOBD_DB": str(tmp_path / "jobd.db")},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,  # make and jobd in a group of their own, stopped together
        )
    served = JobdProcess(process, stderr_path)
    try:
        assert served.read_url().startswith("http://127.0.0.1:")  # not make's command line
        os.killpg(process.pid, signal.SIGTERM)
        served.wait()
        assert "jobd: stopped" in served.stderr()
    finally:
        with contextlib.suppress(ProcessLookupError):  # the group is gone once both exited
            os.killpg(process.pid, signal.SIGKILL)
        served.close()
