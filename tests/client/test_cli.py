"""The `jobd` client commands, run as subprocesses against a real jobd (the fixture's):
their output, one-line errors and exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provena_jobd.cli.output import TIME_FORMAT
from provena_jobd.client import job_result
from provena_jobd.identity import hash_token
from provena_jobd.models import JobStatus
from provena_jobd.testing import JobdServerFactory, JobdTestServer
from tests.client.handlers import JOB_TYPE, JOBS, STEP, gate

JOBD = Path(sys.executable).parent / "jobd"


@dataclass
class Ran:
    """A finished `jobd` command."""

    status: int
    out: str
    err: str

    def json(self) -> Any:
        """Its stdout as JSON."""
        return json.loads(self.out)


def environment(**extra: str) -> dict[str, str]:
    """The caller's environment without JOBD_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBD_")}
    env.update(COLUMNS="200", **extra)
    return env


async def start(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    """Start `jobd ARGS` (the server keeps serving in this event loop meanwhile)."""
    return await asyncio.create_subprocess_exec(
        str(JOBD),
        *args,
        env=env or environment(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(process: asyncio.subprocess.Process) -> Ran:
    """Wait for a started command and collect its output."""
    async with asyncio.timeout(30):
        out, err = await process.communicate()
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


async def jobd(*args: str, url: str, env: dict[str, str] | None = None) -> Ran:
    """Run `jobd ARGS --url URL` to completion."""
    return await finish(await start(*args, "--url", url, env=env))


def one_error_line(ran: Ran, detail: str) -> None:
    """The command failed with status 1 and exactly `jobd: error: <detail>` on stderr."""
    assert ran.status == 1, ran
    assert ran.err == f"jobd: error: {detail}\n"


@pytest.fixture
async def server(jobd_server_factory: JobdServerFactory) -> JobdTestServer:
    """A jobd that also runs the tests' STEP jobs."""
    return await jobd_server_factory(jobs=JOBS)


async def test_launch_and_wait(server: JobdTestServer) -> None:
    ok = await jobd("launch", "EMAIL", "EMAIL_WAKE_UP", "--wait", url=server.url)
    assert ok.status == 0, ok
    fields = dict(line.split(None, 1) for line in ok.out.splitlines()[1:])
    assert (fields["status"], fields["job_sub_type"], fields["result"]) == (
        "SUCCEEDED",
        "EMAIL_WAKE_UP",
        "{}",
    )
    failed = await jobd(
        "launch", JOB_TYPE, STEP, "--payload", '{"fail": "bad input"}', "--wait", "--json",
        url=server.url,
    )  # fmt: skip
    assert failed.status == 1, failed
    job = failed.json()
    assert (job["status"], job["info"]) == ("FAILED", "Job failed, err: bad input.")
    assert job["payload"] == {"fail": "bad input"}


async def test_launch_without_wait_and_batches(server: JobdTestServer, tmp_path: Path) -> None:
    payload = tmp_path / "payload.json"
    payload.write_text('{"echo": "from a file"}')
    first = await jobd(
        "launch", JOB_TYPE, STEP, "--payload", f"@{payload}", "--batch", "new", "--json",
        url=server.url,
    )  # fmt: skip
    assert first.status == 0, first
    launched = first.json()
    assert set(launched) == {"session_id", "batch_id", "replayed"} and launched["batch_id"]
    assert launched["replayed"] is False
    second = await jobd("launch", *("EMAIL", "EMAIL_WAKE_UP"), "--batch", launched["batch_id"],
                        url=server.url)  # fmt: skip
    assert second.status == 0, second
    table = dict(line.split(None, 1) for line in second.out.splitlines()[1:])
    assert table["batch_id"] == launched["batch_id"]
    job = await server.client.wait(launched["session_id"], timeout_s=10)
    assert (job.status, job.batch_id) == (JobStatus.SUCCEEDED, launched["batch_id"])
    assert job_result(job) == {"echo": "from a file"}


async def test_usage_errors_exit_2_and_server_errors_exit_1(server: JobdTestServer) -> None:
    not_json = await jobd("launch", "EMAIL", "EMAIL_WAKE_UP", "--payload", "{", url=server.url)
    assert not_json.status == 2 and "Invalid value for '--payload'" in not_json.err
    not_object = await jobd("launch", "EMAIL", "EMAIL_WAKE_UP", "--payload", "[]", url=server.url)
    assert not_object.status == 2 and "must be a JSON object" in not_object.err
    unknown = await jobd("launch", "EMAIL", "NO_SUCH_SUB_TYPE", url=server.url)
    assert unknown.status == 1 and unknown.out == ""
    assert unknown.err.startswith("jobd: error: body.job_sub_type: value is not a valid")
    assert unknown.err.count("\n") == 1
    missing = await jobd("jobs", "show", "00000000-0000-4000-8000-000000000000", url=server.url)
    one_error_line(missing, "Item was not found.")


async def test_jobs_list_and_show(server: JobdTestServer) -> None:
    client = server.client
    ids = [(await client.launch("EMAIL", "EMAIL_WAKE_UP")).session_id for _ in range(3)]
    theirs = (await client.launch("EMAIL", "EMAIL_WAKE_UP", username="alice")).session_id
    for session_id in [*ids, theirs]:
        await client.wait(session_id, timeout_s=10, admin=True)
    table = await jobd("jobs", "list", url=server.url)
    assert table.status == 0, table
    header, *rows = table.out.splitlines()
    assert header.split()[:6] == ["SESSION_ID", "CREATED", "STATUS", "TYPE", "SUB_TYPE", "USER"]
    assert [row.split()[0] for row in rows] == ids[::-1]
    assert all(row.split()[4] == "SUCCEEDED" for row in rows)  # CREATED: date, time, zone
    everyone = await jobd("jobs", "list", "--admin", "--limit", "2", "--json", url=server.url)
    assert [job["session_id"] for job in everyone.json()] == [theirs, ids[2]]
    alice = await jobd("jobs", "list", "--user", "alice", "--json", url=server.url)
    assert [job["username"] for job in alice.json()] == ["alice"]
    shown = await jobd("jobs", "show", ids[0], url=server.url)
    assert shown.status == 0
    assert shown.out.splitlines()[1].split() == ["session_id", ids[0]]
    assert "waiting" not in fields_of(shown)  # it has finished: nothing to explain
    refused = await jobd("jobs", "show", theirs, url=server.url)
    assert refused.status == 1, refused
    assert refused.err.startswith("jobd: error: Not authorised to view this record. ")
    assert refused.err.endswith(f": jobd jobs show --admin {theirs}\n")  # the caller may
    as_admin = await jobd("jobs", "show", theirs, "--admin", "--json", url=server.url)
    assert as_admin.json()["username"] == "alice"


def fields_of(shown: Ran) -> dict[str, str]:
    """`jobs show`'s table as {field: value}."""
    return dict(line.split(None, 1) for line in shown.out.splitlines()[1:])


async def test_jobs_show_says_why_a_job_waits(jobd_server_factory: JobdServerFactory) -> None:
    server = await jobd_server_factory(jobs=JOBS, pool={JOB_TYPE: {"cold_start_s": 3600}})
    client = server.client
    await client.launch(JOB_TYPE, STEP)
    second = (await client.launch(JOB_TYPE, STEP)).session_id
    delayed = (await client.launch("EMAIL", "EMAIL_WAKE_UP", delay_s=3600)).session_id

    shown = await jobd("jobs", "show", second, url=server.url)
    assert shown.status == 0, shown
    rows = fields_of(shown)
    assert (rows["status"], rows["waiting"]) == ("PENDING", "cold_start")
    assert "cold start" in rows["why"] and JOB_TYPE in rows["why"]
    local, zone = rows["ready_at"].rsplit(" ", 1)  # local time, then its zone
    ready_at = time.mktime(time.strptime(local, TIME_FORMAT))
    assert zone == time.localtime(ready_at).tm_zone
    assert 3500 < ready_at - time.time() <= 3600
    assert rows["ahead"] == "1 job of its type before it"
    assert list(rows).index("waiting") == list(rows).index("info") + 1

    as_json = (await jobd("jobs", "show", second, "--json", url=server.url)).json()
    assert (as_json["session_id"], as_json["status"]) == (second, "PENDING")
    assert (as_json["waiting"]["reason"], as_json["waiting"]["ahead"]) == ("cold_start", 1)

    scheduled = fields_of(await jobd("jobs", "show", delayed, url=server.url))
    assert scheduled["waiting"] == "scheduled"
    assert scheduled["why"].startswith("Scheduled: waits until ")
    assert "ahead" not in scheduled  # jobd does not count a scheduled job's place


async def test_jobs_watch_follows_a_job_until_it_finishes(server: JobdTestServer) -> None:
    opened = gate("watch")
    launched = await server.client.launch(JOB_TYPE, STEP, {"gate": "watch"})
    watcher = await start("jobs", "watch", launched.session_id, "--url", server.url)
    assert watcher.stdout is not None
    lines: list[str] = []
    async with asyncio.timeout(20):
        while "Waiting at the gate" not in "".join(lines):
            lines.append((await watcher.stdout.readline()).decode())
    assert "IN_PROGRESS  50%  Waiting at the gate" in lines[-1]
    opened.set()
    ran = await finish(watcher)
    assert ran.status == 0, ran
    assert ran.out.split()[2] == "SUCCEEDED"  # after the time and its zone
    again = await jobd("jobs", "watch", launched.session_id, "--json", url=server.url)
    assert again.status == 0 and again.json()["status"] == "SUCCEEDED"  # one line: finished


async def test_jobs_watch_exits_1_when_the_job_fails_or_time_runs_out(
    server: JobdTestServer,
) -> None:
    never = gate("never")
    stuck = await server.client.launch(JOB_TYPE, STEP, {"gate": "never"})
    timed_out = await jobd("jobs", "watch", stuck.session_id, "--timeout", "0.3", url=server.url)
    one_error_line(timed_out, f"job {stuck.session_id} did not finish within 0.3 s")
    never.set()
    failing = gate("fail")
    launched = await server.client.launch(JOB_TYPE, STEP, {"gate": "fail", "fail": "no"})
    watcher = await start("jobs", "watch", launched.session_id, "--json", "--url", server.url)
    assert watcher.stdout is not None
    async with asyncio.timeout(20):
        first = json.loads(await watcher.stdout.readline())
    assert first["session_id"] == launched.session_id
    failing.set()
    ran = await finish(watcher)
    assert ran.status == 1 and ran.err == ""
    assert json.loads(ran.out.splitlines()[-1])["status"] == "FAILED"


async def test_batch_show_draws_progress_until_the_batch_is_done(server: JobdTestServer) -> None:
    client = server.client
    opened = gate("batch")
    first = await client.launch(JOB_TYPE, STEP, {"gate": "batch"}, new_batch=True)
    batch_id = first.batch_id
    assert batch_id is not None
    for payload in ({"gate": "batch"}, {"gate": "batch", "fail": "one of them"}):
        await client.launch(JOB_TYPE, STEP, payload, batch_id=batch_id)
    shower = await start("batch", "show", batch_id, "--url", server.url)
    assert shower.stdout is not None
    async with asyncio.timeout(20):
        line = (await shower.stdout.readline()).decode()
    assert line.startswith("[------------------------------]  0/3 finished")
    opened.set()
    ran = await finish(shower)
    assert ran.status == 1, ran  # one job of the batch FAILED
    last = ran.out.splitlines()[-1]
    assert last.startswith("[" + "#" * 30 + "]  3/3 done")
    assert "SUCCEEDED 2" in last and "FAILED 1" in last
    summary = await jobd("batch", "show", batch_id, "--json", url=server.url)
    assert summary.status == 1
    assert summary.json()["counts"]["FAILED"] == 1 and summary.json()["done"] is True
    now = await jobd("batch", "show", batch_id, "--no-wait", url=server.url)
    assert now.status == 0 and "3/3 done" in now.out
    unknown = await jobd("batch", "show", "no-such-batch", url=server.url)
    one_error_line(unknown, "Item was not found.")


async def test_retry_and_cancel(server: JobdTestServer) -> None:
    client = server.client
    failed = await client.launch(JOB_TYPE, STEP, {"fail": "flaky"})
    await client.wait(failed.session_id, timeout_s=10)
    retried = await jobd("retry", failed.session_id, url=server.url)
    assert retried.status == 0, retried
    new_id = retried.out.strip()
    assert (await client.wait(new_id, timeout_s=10)).retry_of == failed.session_id
    waited = await jobd("retry", failed.session_id, "--wait", "--json", url=server.url)
    assert waited.status == 1 and waited.json()["retry_of"] == failed.session_id
    ok = await client.launch("EMAIL", "EMAIL_WAKE_UP")
    await client.wait(ok.session_id, timeout_s=10)
    refused = await jobd("retry", ok.session_id, url=server.url)
    one_error_line(refused, f"Only a FAILED job can be retried; job {ok.session_id} is SUCCEEDED.")
    gate("cancel")
    running = await client.launch(JOB_TYPE, STEP, {"gate": "cancel"})
    cancelled = await jobd("cancel", running.session_id, url=server.url)
    assert cancelled.status == 0, cancelled
    assert cancelled.out.startswith(running.session_id)
    job = await client.wait(running.session_id, timeout_s=10)
    assert job.status is JobStatus.FAILED
    again = await jobd("cancel", running.session_id, "--json", url=server.url)
    one_error_line(
        again,
        f"Job {running.session_id} has already finished (FAILED); it cannot be cancelled.",
    )


async def test_pool(server: JobdTestServer) -> None:
    await server.client.wait((await server.client.launch("EMAIL", "EMAIL_WAKE_UP")).session_id)
    table = await jobd("pool", url=server.url)
    assert table.status == 0, table
    header, *rows = table.out.splitlines()
    assert header.split()[:4] == ["JOB_TYPE", "PROVISIONING", "IDLE", "BUSY"]
    email = next(row.split() for row in rows if row.startswith("EMAIL "))
    assert email[2] == "1" and email[7] == "1"  # one idle worker, one job finished
    pools = (await jobd("pool", "--json", url=server.url)).json()["pools"]
    assert {pool["job_type"] for pool in pools} >= {"EMAIL", JOB_TYPE}


async def test_url_and_token_from_the_environment(
    jobd_server_factory: JobdServerFactory,
) -> None:
    secret = "jobd_cli-test-token"
    entry = {"sha256": hash_token(secret), "user": "svc", "roles": ["job-service-read"]}
    server = await jobd_server_factory(auth={"mode": "token", "tokens": [entry]})
    anonymous = await finish(await start("jobs", "list", env=environment(JOBD_URL=server.url)))
    one_error_line(anonymous, "Not authenticated (pass --token TOKEN or set JOBD_TOKEN)")
    with_token = await finish(
        await start("pool", "--json", env=environment(JOBD_URL=server.url, JOBD_TOKEN=secret))
    )
    assert with_token.status == 0, with_token
    flag = await jobd("jobs", "list", "--token", secret, "--json", url=server.url)
    assert flag.status == 0 and flag.json() == []


async def test_an_unreachable_jobd_is_one_line_and_exit_1() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ran = await jobd("pool", url=f"http://127.0.0.1:{port}")
    assert ran.status == 1 and ran.out == ""
    assert ran.err.startswith(f"jobd: error: cannot reach jobd at http://127.0.0.1:{port}: ")
    assert ran.err.count("\n") == 1


async def test_watch_sees_a_job_whose_events_it_is_not_sent(
    jobd_server_factory: JobdServerFactory,
) -> None:
    # A reader may fetch anyone's job on the admin route, but only an admin is sent everyone's
    # events: `jobs watch --admin` still sees the job finish (it re-reads it).
    writer, reader = "jobd_writer-token", "jobd_reader-token"
    tokens = [
        {
            "sha256": hash_token(writer),
            "user": "svc",
            "roles": ["job-service-read", "job-service-write"],
        },
        {"sha256": hash_token(reader), "user": "reader", "roles": ["job-service-read"]},
    ]
    server = await jobd_server_factory(
        jobs=JOBS,
        auth={"mode": "token", "tokens": tokens, "service_accounts": ["svc"]},
        token=writer,
    )
    opened = gate("theirs")
    launched = await server.client.launch(JOB_TYPE, STEP, {"gate": "theirs"}, username="alice")
    watcher = await start(
        "jobs", "watch", launched.session_id, "--admin", "--token", reader, "--url", server.url
    )
    assert watcher.stdout is not None
    async with asyncio.timeout(20):
        first = (await watcher.stdout.readline()).decode()
    assert first.split()[2] in {"PENDING", "DEQUEUED", "IN_PROGRESS"}  # after time and zone
    opened.set()
    ran = await finish(watcher)
    assert ran.status == 0, ran
    assert ran.out.splitlines()[-1].split()[2] == "SUCCEEDED"
