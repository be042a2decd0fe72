"""`jobd serve --ephemeral`, started the way a harness in another language would: a subprocess
whose one stdout line says where it listens."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
JOBD = BIN / "jobd"


def environment() -> dict[str, str]:
    """The environment without JOBD_* settings, with jobd on the PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBD_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def http(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    """One plain HTTP request, as a harness without a jobd client would send it."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_ephemeral_prints_one_json_line_then_cleans_up(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [str(JOBD), "serve", "--ephemeral"],
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        assert set(ready) == {"url", "pid", "db"} and ready["pid"] == process.pid
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", ready["url"])
        assert not ready["url"].endswith(":8421")  # a free port, not the default
        database = Path(ready["db"])
        assert database.exists() and not database.is_relative_to(tmp_path)
        # It accepts requests as soon as the line is out.
        assert http("GET", ready["url"] + "/") == {"message": "Health check successful."}
        launched = http(
            "POST",
            ready["url"] + "/jobs/admin/launch",
            {"job_type": "EMAIL", "job_sub_type": "EMAIL_WAKE_UP", "job_payload": {}},
        )
        url = f"{ready['url']}/jobs/user/fetch?session_id={launched['session_id']}&wait_s=10"
        assert http("GET", url)["job"]["status"] == "SUCCEEDED"
    finally:
        process.send_signal(signal.SIGTERM)
        rest, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors
    assert rest == ""  # the ready line was the only output on stdout
    assert "Traceback" not in errors
    assert not database.parent.exists()  # the throw-away folder is gone
    assert list(tmp_path.iterdir()) == []  # nothing written where it was started


def test_ephemeral_honours_port_and_refuses_db(tmp_path: Path) -> None:
    refused = subprocess.run(
        [str(JOBD), "serve", "--ephemeral", "--db", str(tmp_path / "x.db")],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 2 and "do not combine it with --db" in refused.stderr
    assert refused.stdout == "" and list(tmp_path.iterdir()) == []
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [str(JOBD), "serve", "--ephemeral", "--port", str(port)],
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert json.loads(process.stdout.readline())["url"] == f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors


def _shell_example() -> str:
    """The shell block of docs/testing.md, exactly as documented."""
    text = (REPO / "docs" / "testing.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.DOTALL)
    assert len(blocks) == 1, "docs/testing.md should have one sh block"
    return str(blocks[0])


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("curl") is None, reason="no bash")
def test_the_documented_shell_harness_works(tmp_path: Path) -> None:
    script = tmp_path / "harness.sh"
    # The documented block, then one line of ours to learn where its database was.
    script.write_text(_shell_example() + 'echo "$ready" >&2\n')
    finished = subprocess.run(
        ["bash", str(script)],
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=45,
    )
    assert finished.returncode == 0, finished.stderr
    job = json.loads(finished.stdout)["job"]
    assert (job["job_sub_type"], job["status"]) == ("EMAIL_WAKE_UP", "SUCCEEDED")
    ready = json.loads(
        next(line for line in finished.stderr.splitlines() if line.startswith('{"url"'))
    )
    assert "jobd: stopped" in finished.stderr  # the trap stopped it cleanly
    assert not Path(ready["db"]).parent.exists()
