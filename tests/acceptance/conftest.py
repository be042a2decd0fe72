"""Fixtures that run the real `jobd serve` as a subprocess, through the harness in tests/process.py.

Every process a test starts is SIGKILLed at teardown if it is still running, so a failing
test never leaves a server behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.process import JobdLauncher, JobdProcess


@pytest.fixture
def jobd(tmp_path: Path) -> Iterator[JobdLauncher]:
    """A launcher for `jobd serve` subprocesses, cleaned up after the test."""
    launcher = JobdLauncher(tmp_path)
    try:
        yield launcher
    finally:
        launcher.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A fresh database path in the test's own folder."""
    return tmp_path / "jobd.db"


@pytest.fixture
def server(jobd: JobdLauncher, db_path: Path) -> JobdProcess:
    """A running `jobd serve --port 0 --db <tmp>/jobd.db` with the default config."""
    return jobd.start("--port", "0", "--db", str(db_path))
