"""The subprocess harness cannot hang a test: a silent or chatty server fails it in time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.process import JobdProcess

# Writes 4 MB to stderr (far more than a pipe holds), then nothing on stdout for a minute.
CHATTY_AND_SILENT = (
    "import sys, time; sys.stderr.write('log line\\n' * 500_000); sys.stderr.flush(); "
    "time.sleep(60)"
)


def test_a_server_that_prints_no_url_fails_the_test_at_the_deadline(tmp_path: Path) -> None:
    stderr_path = tmp_path / "server.stderr"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", CHATTY_AND_SILENT], stdout=subprocess.PIPE, stderr=stderr
        )
    server = JobdProcess(process, stderr_path)
    try:
        with pytest.raises(pytest.fail.Exception, match=r"printed no URL within 0\.3 s"):
            server.read_url(timeout_s=0.3)
        assert process.poll() is not None  # killed, not left running
    finally:
        server.close()


def test_a_line_that_is_not_a_url_fails_the_test(tmp_path: Path) -> None:
    stderr_path = tmp_path / "server.stderr"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", "print('hello'); import time; time.sleep(60)"],
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    server = JobdProcess(process, stderr_path)
    try:
        with pytest.raises(pytest.fail.Exception, match="did not print its URL first: 'hello'"):
            server.read_url(timeout_s=10)
        assert process.poll() is not None
    finally:
        server.close()
