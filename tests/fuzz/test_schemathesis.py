"""Schemathesis against a real `jobd serve`: no 5xx, and no response that breaks its schema."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

JOBD = Path(sys.executable).parent / "jobd"
SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(sys.executable).parent))


@pytest.mark.acceptance
@pytest.mark.timeout(240)
def test_fuzzing_finds_no_server_error_and_no_schema_violation(tmp_path: Path) -> None:
    if SCHEMATHESIS is None:
        pytest.fail("schemathesis is not installed: pip install -e '.[test]'")
    server = subprocess.Popen(
        [
            str(JOBD),
            "serve",
            "--port",
            "0",
            "--db",
            str(tmp_path / "jobd.db"),
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        run = subprocess.run(
            [
                SCHEMATHESIS,
                "run",
                f"{url}/openapi.json",
                "--checks",
                "not_a_server_error,response_schema_conformance",
                "--phases",
                "examples,coverage,fuzzing",
                "--max-examples",
                "25",
                "--seed",
                "1",
                "--workers",
                "2",
                # An event stream never ends by design; it has tests of its own.
                "--exclude-path-regex",
                "/events$",
            ],
            capture_output=True,
            text=True,
            timeout=200,
            cwd=tmp_path,
        )
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
        assert "passed" in run.stdout
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=20)
    assert server.returncode == 0, errors
    assert "Traceback" not in errors
