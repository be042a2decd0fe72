"""Run the real `jobd` command as a subprocess, the way a user or a test harness would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
JOBD = Path(sys.executable).parent / "jobd"


class JobdProcess:
    """`jobd serve` in a subprocess, with the URL it printed (the benchmark uses it too)."""

    def __init__(
        self,
        args: list[str],
        cwd: Path,
        env: dict[str, str] | None = None,
        stderr: Path | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        """Start it; `stderr` sends its log to a file, `preexec_fn` runs in the child."""
        environment = {k: v for k, v in os.environ.items() if not k.startswith("JOBD_")}
        # Handlers named in test configs (`tests.e2e.handlers:...`) must be importable.
        environment["PYTHONPATH"] = str(REPO)
        environment.update(env or {})
        self.process = subprocess.Popen(
            [str(JOBD), "serve", *args],
            cwd=cwd,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if stderr is None else stderr.open("w"),
            stdin=subprocess.DEVNULL,
            text=True,
            preexec_fn=preexec_fn,
        )
        self.url = self._read_url()

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    @property
    def port(self) -> int:
        """The port it listens on."""
        port = urlsplit(self.url).port
        assert port is not None, self.url
        return port

    def _read_url(self, within_s: float = 20.0) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + within_s
        line = self.process.stdout.readline().strip()
        if not line.startswith("http://") or time.monotonic() > deadline:
            self.process.kill()
            _, errors = self.process.communicate(timeout=10)
            raise AssertionError(f"jobd did not start: {line!r}\n{errors}")
        return line

    def stop(self) -> tuple[int, str]:
        """SIGTERM, wait, and return the exit status and stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            _, errors = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, errors = self.process.communicate(timeout=10)
        return self.process.returncode, errors or ""

    def kill(self) -> None:
        """SIGKILL: no chance to clean up."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate(timeout=10)
