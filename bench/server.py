"""A real `jobd serve` subprocess for the benchmark, and ending every child it started."""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import multiprocessing.process
import multiprocessing.queues
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.process import JobdProcess, start

HOST = "127.0.0.1"
LAUNCH_PATH = "/jobs/admin/launch"
LAUNCH_BODY = b'{"job_type":"EMAIL","job_sub_type":"EMAIL_WAKE_UP","job_payload":{}}'

# Children this process started; the watchdog and the exit path end them, and nothing else.
_CHILDREN: list[subprocess.Popen[Any]] = []
_LOADERS: list[multiprocessing.process.BaseProcess] = []

# -- processes -------------------------------------------------------------------------------


def die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the benchmark dies (Linux only)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def end_children() -> None:
    """Kill every child this benchmark started that is still running."""
    for proc in _CHILDREN:
        if proc.poll() is None:
            proc.kill()
            with contextlib.suppress(Exception):
                proc.wait(timeout=5)
    for loader in _LOADERS:
        if loader.is_alive():
            loader.kill()
            loader.join(timeout=5)


def write_config(path: Path, max_workers: int, concurrency: int) -> None:
    """A jobd.toml that sets only the pool (everything else, durability included, default)."""
    path.write_text(f"[pool]\nmax_workers = {max_workers}\nconcurrency = {concurrency}\n")


@contextlib.contextmanager
def jobd_server(workdir: Path, db: Path, config: Path) -> Iterator[JobdProcess]:
    """`jobd serve` on 127.0.0.1, port 0, through the tests' harness; stopped (SIGTERM) after.

    Its log goes to `workdir/jobd.log`; it dies with the benchmark (PR_SET_PDEATHSIG).
    """
    args = ["--host", HOST, "--port", "0", "--db", str(db), "--config", str(config)]
    server = start(args, workdir, stderr_path=workdir / "jobd.log", preexec_fn=die_with_parent)
    _CHILDREN.append(server.process)
    try:
        yield server
    finally:
        server.stop()
