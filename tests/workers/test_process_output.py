"""What jobd's worker processes write: every line of their stdout and stderr is in jobd's log,
prefixed with the worker's id, with the token jobd gave them and the configuration's secrets
redacted; nothing is lost when a process exits or crashes, its exit is logged after its last
line, and one that writes a lot is never stalled.

Real `ProcessPool`s starting real processes on a real store, with a fake clock; each test
ticks its pool by hand (see test_process_backoff.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from provena_jobd.identity import hash_token
from provena_jobd.models import JobSubType
from provena_jobd.redaction import REDACTED
from provena_jobd.workers import process_output, process_pool
from provena_jobd.workers.process_output import MAX_LINE_BYTES, LineSplitter
from tests.helpers import eventually
from tests.workers.pool_helpers import MakePool, launch

WAKE = JobSubType.REGISTRY_WAKE_UP
OUTPUT_LOGGER = process_output.log.name
POOL_LOGGER = process_pool.log.name
SMTP_PASSWORD = "hunter2-smtp"
ENV_SECRET = "s3cret-from-env"
# Auth on (so jobd makes its processes a token), a mail password and a secret in the pool's
# env: everything the configuration holds that must never show.
SECRETS_CONFIG = {
    "auth": {
        "mode": "token",
        "tokens": [{"sha256": hash_token("jobd_admin-t0ken"), "user": "ops", "roles": []}],
    },
    "email": {"smtp_host": "mail.example", "username": "jobd", "password": SMTP_PASSWORD},
}

# A worker that prints its token, a config holding the mail password (its argument) and its
# whole environment, on both streams, then a last line with no newline, and crashes.
PRINTS_SECRETS = [
    sys.executable,
    "-c",
    "import os, sys\n"
    "print('token=' + os.environ['JOBD_TOKEN'])\n"
    "print('config: password=' + sys.argv[1], file=sys.stderr)\n"
    "print(dict(os.environ), file=sys.stderr)\n"
    "sys.stdout.write('last words: ' + os.environ['JOBD_TOKEN'])\n"
    "sys.exit(3)",
    SMTP_PASSWORD,
]


@pytest.fixture(autouse=True)
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """The workers' output, as jobd logs it."""
    caplog.set_level(logging.INFO, logger=OUTPUT_LOGGER)
    yield caplog


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The workers' output lines jobd logged."""
    return [r.getMessage() for r in caplog.records if r.name == OUTPUT_LOGGER]


async def test_a_worker_printing_its_token_and_environment_shows_redacted_in_jobd_log(
    make_pool: MakePool, logged: pytest.LogCaptureFixture
) -> None:
    server, pool = await make_pool(
        PRINTS_SECRETS, dict(SECRETS_CONFIG), env={"API_KEY": ENV_SECRET}
    )
    token = pool.token
    assert token is not None and token.startswith("jobd_")  # the one jobd made, as it started
    await launch(server, WAKE)
    await pool.tick()
    [worker] = pool.processes
    assert await worker.process.wait() == 3
    await worker.output.finish(timeout_s=5)  # what it wrote before it crashed is all read

    shown = lines(logged)
    assert "REGISTRY-p1 stdout: token=<redacted>" in shown
    assert "REGISTRY-p1 stdout: last words: <redacted>" in shown  # no newline: still logged
    assert "REGISTRY-p1 stderr: config: password=<redacted>" in shown
    [environment] = [line for line in shown if line.startswith("REGISTRY-p1 stderr: {")]
    assert f"'JOBD_TOKEN': '{REDACTED}'" in environment
    assert f"'API_KEY': '{REDACTED}'" in environment
    assert "'JOBD_WORKER_ID': 'REGISTRY-p1'" in environment  # what is not secret still shows
    everything = logged.text + "".join(map(str, (vars(r) for r in logged.records)))
    for secret in (token, SMTP_PASSWORD, ENV_SECRET):
        assert secret not in everything
    # JSON logs say which worker and stream each line came from.
    record = next(r for r in logged.records if r.name == OUTPUT_LOGGER)
    assert (record.action, record.worker_id, record.stream) == (  # type: ignore[attr-defined]
        "worker_output",
        "REGISTRY-p1",
        "stdout",
    )


async def test_a_worker_that_writes_a_lot_is_never_stalled_and_long_lines_are_cut(
    make_pool: MakePool, logged: pytest.LogCaptureFixture
) -> None:
    # 4 MB, far more than a pipe holds: it only exits if jobd keeps reading. One line is cut
    # inside the token, whose beginning must not show either.
    writes_a_lot = [
        sys.executable,
        "-c",
        "import os, sys\n"
        "for _ in range(40): print('x' * 100_000)\n"
        "print('y' * (int(sys.argv[1]) - 5) + os.environ['JOBD_TOKEN'])\n"
        "print('done', file=sys.stderr)",
        str(MAX_LINE_BYTES),
    ]
    server, pool = await make_pool(writes_a_lot, dict(SECRETS_CONFIG))
    assert pool.token is not None
    await launch(server, WAKE)
    await pool.tick()
    [worker] = pool.processes
    assert await asyncio.wait_for(worker.process.wait(), 5) == 0
    await worker.output.finish(timeout_s=5)

    cut, token_cut = 100_000 - MAX_LINE_BYTES, len(pool.token) - 5
    assert lines(logged) == [
        *[f"REGISTRY-p1 stdout: {'x' * MAX_LINE_BYTES} [{cut} more bytes not shown]"] * 40,
        f"REGISTRY-p1 stdout: {'y' * (MAX_LINE_BYTES - 5)}{REDACTED} "
        f"[{token_cut} more bytes not shown]",
        "REGISTRY-p1 stderr: done",
    ]


async def test_what_a_worker_writes_as_jobd_stops_it_is_logged(
    make_pool: MakePool, logged: pytest.LogCaptureFixture
) -> None:
    says_goodbye = [
        sys.executable,
        "-c",
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit('stopped by SIGTERM'))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)",
    ]
    server, pool = await make_pool(says_goodbye)
    await launch(server, WAKE)
    await pool.tick()

    async def ready() -> bool:
        return "REGISTRY-p1 stdout: ready" in lines(logged)

    await eventually(ready, what="the worker to be ready")
    logged.set_level(logging.INFO, logger=POOL_LOGGER)
    await pool.drain(grace_s=0)
    assert lines(logged)[-1] == "REGISTRY-p1 stderr: stopped by SIGTERM"
    # ... and then that it ended, as for a process that ends on its own.
    [ended] = [r for r in logged.records if getattr(r, "action", "") == "worker_process_exited"]
    assert ended.getMessage().endswith(
        "(REGISTRY-p1) stopped at jobd's shutdown: exited with code 1"
    )
    assert logged.records.index(ended) > max(
        i for i, r in enumerate(logged.records) if r.name == OUTPUT_LOGGER
    )


async def test_a_child_left_holding_the_output_does_not_hang_jobd_shutdown(
    make_pool: MakePool, logged: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process_pool, "OUTPUT_WAIT_S", 0.05)
    # The worker starts a child that inherits its stdout and outlives it.
    leaves_a_child = [
        sys.executable,
        "-c",
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)",
    ]
    server, pool = await make_pool(leaves_a_child)
    await launch(server, WAKE)
    await pool.tick()

    async def child_pid() -> int | None:
        said = [line.rpartition(" ")[2] for line in lines(logged)]
        return int(said[0]) if said else None

    child = await eventually(child_pid, what="the worker to start its child")
    [worker] = pool.processes
    try:
        await asyncio.wait_for(pool.drain(grace_s=0), 2)
        assert worker.process.returncode == -signal.SIGTERM
        assert all(relay.closed.done() for relay in worker.output.relays)  # no longer read
    finally:
        os.kill(child, signal.SIGKILL)


# A worker that leaves a child holding its stdout and exits: the child writes its last line
# once the test lets it (a FIFO opened and closed; its path is the argument), and ends.
LEAVES_A_CHILD_WITH_THE_LAST_WORD = [
    sys.executable,
    "-c",
    "import subprocess, sys\n"
    "child = 'import sys; open(sys.argv[1]).read(); print(\"the child ends\")'\n"
    "subprocess.Popen([sys.executable, '-c', child, sys.argv[1]])\n"
    "print('the worker ends', flush=True)",
]


def opened_and_closed(fifo: Path) -> bool:
    """Hand whoever waits on `fifo` its end of file; False if nobody waits on it yet."""
    try:
        end = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # ENXIO: nobody has it open for reading
        return False
    os.close(end)
    return True


async def release(fifo: Path) -> None:
    """Let the child go on, once it waits on `fifo`."""

    async def released() -> bool:
        return opened_and_closed(fifo)

    await eventually(released, what="the child to wait on its FIFO")


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    """The FIFO a worker's child waits on; a child still waiting at the end is let go."""
    path = tmp_path / "go"
    os.mkfifo(path)
    yield path
    opened_and_closed(path)


def exit_and_output(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The workers' output lines and the pool's lines about their processes ending, in order."""
    shown = [r.getMessage() for r in caplog.records if r.name in (OUTPUT_LOGGER, POOL_LOGGER)]
    return [line for line in shown if line.startswith("REGISTRY-p1 ") or "exited with" in line]


async def test_a_worker_process_exit_is_logged_after_everything_it_wrote(
    make_pool: MakePool,
    logged: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    fifo: Path,
) -> None:
    monkeypatch.setattr(process_pool, "OUTPUT_WAIT_S", 10.0)  # the child ends well before
    logged.set_level(logging.INFO, logger=POOL_LOGGER)
    server, pool = await make_pool([*LEAVES_A_CHILD_WITH_THE_LAST_WORD, str(fifo)])
    await launch(server, WAKE)
    await pool.tick()
    [worker] = pool.processes
    assert await asyncio.wait_for(worker.process.wait(), 5) == 0

    # The pool sees the process has ended while its pipes still hold a last line: the child's
    # stands for any line not yet read then, and comes only once the test lets it.
    reaping = asyncio.create_task(pool.tick())
    await release(fifo)
    await asyncio.wait_for(reaping, 5)
    [*output, ended] = exit_and_output(logged)
    assert output == ["REGISTRY-p1 stdout: the worker ends", "REGISTRY-p1 stdout: the child ends"]
    assert f"process {worker.process.pid} exited with code 0" in ended
    assert pool.processes == []


async def test_a_child_left_holding_the_output_delays_the_exit_line_only_briefly(
    make_pool: MakePool,
    logged: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    fifo: Path,
) -> None:
    monkeypatch.setattr(process_pool, "OUTPUT_WAIT_S", 0.05)
    logged.set_level(logging.INFO, logger=POOL_LOGGER)
    server, pool = await make_pool([*LEAVES_A_CHILD_WITH_THE_LAST_WORD, str(fifo)])
    await launch(server, WAKE)
    await pool.tick()
    [worker] = pool.processes
    assert await asyncio.wait_for(worker.process.wait(), 5) == 0

    await asyncio.wait_for(pool.tick(), 2)  # the child still holds the pipe: not waited for
    [*output, ended] = exit_and_output(logged)
    assert output == ["REGISTRY-p1 stdout: the worker ends"]
    assert "exited with code 0" in ended
    # The pipe is still read: what the child writes later is logged, after the exit line.
    await release(fifo)

    async def child_ended() -> bool:
        return exit_and_output(logged)[-1] == "REGISTRY-p1 stdout: the child ends"

    await eventually(child_ended, what="the child's last line")


def test_lines_are_split_across_reads_and_capped() -> None:
    splitter = LineSplitter(limit=8)
    assert splitter.feed(b"one\r\ntw") == [(b"one", 0)]
    assert splitter.feed(b"o\n0123456789") == [(b"two", 0)]
    assert splitter.feed(b"abc\nlast") == [(b"01234567", 5)]  # 13 bytes: 8 kept, 5 cut
    assert splitter.end() == [(b"last", 0)]
    assert splitter.end() == []


async def test_a_worker_that_cannot_start_leaves_no_pipe_open(make_pool: MakePool) -> None:
    server, pool = await make_pool(["/nonexistent/worker"])
    await launch(server, WAKE)
    before = len(os.listdir("/proc/self/fd"))
    await pool.tick()
    assert (pool.cold_starts, pool.outputs) == (0, [])

    async def closed() -> bool:  # the pipes' ends are seen as the loop next polls
        return len(os.listdir("/proc/self/fd")) == before

    await eventually(closed, within_s=0.4, what="the pipes of a start that failed closed")


async def test_a_start_error_naming_a_secret_shows_it_nowhere(
    make_pool: MakePool, caplog: pytest.LogCaptureFixture
) -> None:
    # A command mistyped with a secret in its path: the OS error names the path.
    server, pool = await make_pool([f"/nonexistent/{SMTP_PASSWORD}/worker"], dict(SECRETS_CONFIG))
    await launch(server, WAKE)
    await pool.tick()
    backoff = (await pool.snapshot()).start_backoff
    assert backoff is not None and backoff.error is not None
    assert backoff.error.startswith("FileNotFoundError:") and "<redacted>" in backoff.error
    waiting = await server.pool_snapshots()
    shown = msgspec.json.encode([backoff, waiting]).decode() + caplog.text
    assert SMTP_PASSWORD not in shown
