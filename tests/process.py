"""The one harness that runs the real `jobd serve` as a subprocess, as a user or a harness would.

The acceptance and end-to-end tests and the benchmark (bench/server.py, bench/soak.py) all use
it. A server's stderr goes to a file, never to a pipe nobody reads, so a chatty server cannot
fill a pipe and hang; its stdout is read with a deadline (select), so a server that prints
nothing cannot hang a test either.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[1]
URL_TIMEOUT_S = 20.0
EXIT_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 30.0


def jobd_executable() -> str:
    """The `jobd` console script of the environment running the tests."""
    beside_python = Path(sys.executable).parent / "jobd"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("jobd")
    if found is None:
        pytest.fail("the `jobd` command is not installed in this environment")
    return found


def jobd_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test runner's environment without any JOBD_* variable, plus `extra`.

    The repository is on PYTHONPATH so that configs can name handlers in `tests.*`.
    """
    environment = {k: v for k, v in os.environ.items() if not k.startswith("JOBD_")}
    paths = [*filter(None, environment.get("PYTHONPATH", "").split(os.pathsep)), str(REPO)]
    environment["PYTHONPATH"] = os.pathsep.join(paths)
    environment.update(extra or {})
    return environment


def thread_states(pid: int) -> list[str]:
    """The scheduler state letter of each thread of a process (Linux /proc); [] if it is gone."""
    states = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            states.append(task.joinpath("stat").read_text().rpartition(")")[2].split()[0])
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return []
    return states


class JobdProcess:
    """One `jobd serve` subprocess: its URL once it printed one, and its stderr in a file."""

    def __init__(self, process: subprocess.Popen[bytes], stderr_path: Path) -> None:
        self.process = process
        self.stderr_path = stderr_path
        self.url = ""
        self._stdout = b""

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    @property
    def port(self) -> int:
        """The port it listens on (once `read_url` has returned)."""
        port = urlsplit(self.url).port
        assert port is not None, self.url
        return port

    def read_url(self, timeout_s: float = URL_TIMEOUT_S) -> str:
        """Wait (bounded) for the first stdout line, which must be the URL alone."""
        line = self.first_line(timeout_s)
        if line is None:
            code = self.wait()
            pytest.fail(f"jobd exited ({code}) before printing a URL; stderr:\n{self.stderr()}")
        if not line.startswith("http://"):
            self.kill()
            pytest.fail(f"jobd did not print its URL first: {line!r}; stderr:\n{self.stderr()}")
        self.url = line
        return line

    def first_line(self, timeout_s: float = URL_TIMEOUT_S) -> str | None:
        """The first stdout line, or None if jobd closed stdout (exited) without one."""
        stdout = self.process.stdout
        assert stdout is not None
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._stdout:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                pytest.fail(f"jobd printed no URL within {timeout_s} s; stderr:\n{self.stderr()}")
            ready, _, _ = select.select([stdout], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(stdout.fileno(), 4096)
            if not chunk:
                return None
            self._stdout += chunk
        line, _, self._stdout = self._stdout.partition(b"\n")
        return line.decode()

    def rest_of_stdout(self) -> str:
        """Everything jobd wrote to stdout after the URL line (call once it has exited)."""
        stdout = self.process.stdout
        assert stdout is not None
        return (self._stdout + stdout.read()).decode()

    def stderr(self) -> str:
        """What jobd has written to stderr so far."""
        return self.stderr_path.read_text(errors="replace")

    def send(self, signum: signal.Signals) -> None:
        """Send a signal to the server if it is still running."""
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def freeze(self, timeout_s: float = 5.0) -> None:
        """SIGSTOP the server and wait until every one of its threads has stopped (Linux)."""
        self.send(signal.SIGSTOP)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(state in {"T", "t", "Z", "X"} for state in thread_states(self.pid)):
                return  # every thread stopped (or it exited)
            time.sleep(0.001)
        pytest.fail(f"jobd did not stop within {timeout_s} s of SIGSTOP")

    def thaw(self) -> None:
        """SIGCONT a frozen server."""
        self.send(signal.SIGCONT)

    def wait(self, timeout_s: float = EXIT_TIMEOUT_S) -> int:
        """Wait (bounded) for the server to exit and return its exit status."""
        return self.process.wait(timeout=timeout_s)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> tuple[int, str]:
        """SIGTERM, wait (SIGKILL after `timeout_s`), and return the exit status and stderr."""
        self.send(signal.SIGTERM)
        try:
            code = self.wait(timeout_s)
        except subprocess.TimeoutExpired:
            code = self.kill()
        self._close_stdout()
        return code, self.stderr()

    def kill(self) -> int:
        """SIGKILL the server (no chance to clean up) and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        return self.wait()

    def close(self) -> None:
        """Kill the server if needed and release its pipe."""
        try:
            self.kill()
        finally:
            self._close_stdout()

    def _close_stdout(self) -> None:
        if self.process.stdout is not None:
            self.process.stdout.close()


def start(
    args: Sequence[str],
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    stderr_path: Path | None = None,
    preexec_fn: Callable[[], None] | None = None,
    wait_for_url: bool = True,
) -> JobdProcess:
    """Start `jobd serve ARGS...` and wait (bounded) until it prints the URL it answers on.

    Its stderr goes to `stderr_path` (default: a new `jobd-*.stderr` file in `cwd`);
    `preexec_fn` runs in the child before jobd starts. With `wait_for_url=False` it returns
    at once (`read_url` or `first_line` read what jobd prints).
    """
    if stderr_path is None:
        handle, name = tempfile.mkstemp(prefix="jobd-", suffix=".stderr", dir=cwd)
        os.close(handle)
        stderr_path = Path(name)
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [jobd_executable(), "serve", *args],
            cwd=cwd,
            env=jobd_environment(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            preexec_fn=preexec_fn,
        )
    jobd = JobdProcess(process, stderr_path)
    if wait_for_url:
        try:
            jobd.read_url()
        except BaseException:
            jobd.close()
            raise
    return jobd


class JobdLauncher:
    """Starts `jobd` subprocesses for one test and kills those still running at teardown."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.executable = jobd_executable()
        self.processes: list[JobdProcess] = []

    def spawn(
        self, *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None
    ) -> JobdProcess:
        """Start `jobd serve ARGS...` without waiting for it to listen."""
        stderr_path = self.workdir / f"jobd-{len(self.processes) + 1}.stderr"
        jobd = start(
            args, cwd or self.workdir, env=env, stderr_path=stderr_path, wait_for_url=False
        )
        self.processes.append(jobd)
        return jobd

    def start(
        self, *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None
    ) -> JobdProcess:
        """Start `jobd serve ARGS...` and wait until it prints the URL it answers on."""
        jobd = self.spawn(*args, cwd=cwd, env=env)
        jobd.read_url()
        return jobd

    def run(
        self, *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `jobd serve ARGS...` to completion (for commands that must exit at once)."""
        return subprocess.run(
            [self.executable, "serve", *args],
            cwd=cwd or self.workdir,
            env=jobd_environment(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=EXIT_TIMEOUT_S,
            check=False,
        )

    def close(self) -> None:
        """Kill and reap every process this launcher started."""
        for jobd in self.processes:
            jobd.close()
