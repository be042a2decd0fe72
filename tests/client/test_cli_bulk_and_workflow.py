"""Bulk launch from a payloads file, `jobd workflow`, the list's batch and info columns, and
`jobs watch` on a finished job."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from provena_jobd.client import JobdClient
from provena_jobd.clock import FakeClock
from provena_jobd.config import from_dict
from provena_jobd.http.serve import running
from provena_jobd.jobdocs import example_payload
from provena_jobd.models import JobStatus
from provena_jobd.testing import JobdServerFactory, JobdTestServer, server_settings
from tests.client.handlers import JOB_TYPE, JOBS, STEP, gate
from tests.client.test_cli import environment, finish, jobd, one_error_line, start
from tests.helpers import eventually

EMAIL = {"email_to": "a@example.org", "subject": "s", "body": "b", "reason": "r"}


def jsonl(path: Path, *payloads: object) -> str:
    """Write one JSON value a line (a blank line in the middle too); return the path."""
    lines = [json.dumps(p) for p in payloads]
    path.write_text("\n".join([*lines[:1], "", *lines[1:]]) + "\n")
    return str(path)


async def test_bulk_launch_puts_every_line_in_one_new_batch(
    jobd_server: JobdTestServer, tmp_path: Path
) -> None:
    file = jsonl(tmp_path / "p.jsonl", {"reason": "a"}, {"reason": "b"}, {"reason": "c"})
    ran = await jobd(
        "launch", "EMAIL", "EMAIL_WAKE_UP", "--payloads", file, "--batch", "new", "--json",
        url=jobd_server.url,
    )  # fmt: skip
    assert ran.status == 0, ran
    launched = ran.json()
    assert len(launched) == 3 and len({one["batch_id"] for one in launched}) == 1
    summary = await jobd_server.client.batch_summary(launched[0]["batch_id"])
    assert summary.total == 3
    reasons = [
        json.loads(bytes((await jobd_server.client.fetch(one["session_id"])).payload))["reason"]
        for one in launched
    ]
    assert reasons == ["a", "b", "c"]  # in file order


async def test_bulk_launch_and_wait_exits_1_if_any_failed(
    jobd_server: JobdTestServer, tmp_path: Path
) -> None:
    file = jsonl(tmp_path / "p.jsonl", EMAIL, {**EMAIL, "email_to": "not an address"})
    ran = await jobd("launch", "EMAIL", "SEND_EMAIL", "--payloads", file, "--wait",
                     url=jobd_server.url)  # fmt: skip
    assert ran.status == 1, ran
    header, *rows = ran.out.splitlines()
    assert header.split()[:3] == ["SESSION_ID", "CREATED", "STATUS"]
    # CREATED is 3 words (date, time, zone).
    assert [row.split()[4] for row in rows] == ["SUCCEEDED", "FAILED"]


async def test_bulk_wait_gives_up_after_the_timeout(
    jobd_server_factory: JobdServerFactory, tmp_path: Path
) -> None:
    server = await jobd_server_factory(jobs=JOBS)
    never = gate("bulk-never")
    file = jsonl(tmp_path / "p.jsonl", {"echo": 1}, {"gate": "bulk-never"})
    ran = await jobd("launch", JOB_TYPE, STEP, "--payloads", file, "--wait", "--timeout", "0.3",
                     url=server.url)  # fmt: skip
    never.set()
    assert ran.status == 1 and ran.err.splitlines() == [
        "launched 2 jobs; waiting for them to finish",
        "jobd: error: the 2 jobs did not all finish within 0.3 s",
    ]


async def test_a_bad_line_launches_nothing(jobd_server: JobdTestServer, tmp_path: Path) -> None:
    file = tmp_path / "p.jsonl"
    file.write_text('{"reason": "a"}\n{"reason": \n')
    ran = await jobd("launch", "EMAIL", "EMAIL_WAKE_UP", "--payloads", str(file),
                     url=jobd_server.url)  # fmt: skip
    assert ran.status == 2 and "line 2: not valid JSON" in ran.err
    assert [job async for job in jobd_server.client.list_jobs()] == []


async def test_a_refused_line_says_which_and_what_was_launched(
    jobd_server: JobdTestServer, tmp_path: Path
) -> None:
    file = jsonl(tmp_path / "p.jsonl", EMAIL, {"subject": "no address"}, EMAIL)
    ran = await jobd("launch", "EMAIL", "SEND_EMAIL", "--payloads", file, "--json",
                     url=jobd_server.url)  # fmt: skip
    assert ran.status == 1
    assert ran.err.startswith("jobd: error: line 3: Invalid payload supplied")
    assert ran.err.rstrip().endswith("; the 1 line before it was launched")
    [first] = ran.json()
    assert [job.session_id async for job in jobd_server.client.list_jobs()] == [first["session_id"]]


async def test_a_refused_bulk_launch_names_every_problem(
    jobd_server: JobdTestServer, tmp_path: Path
) -> None:
    file = jsonl(tmp_path / "p.jsonl", {"reason": "a"}, {"reason": "b"})
    ran = await jobd("launch", "MAIL", "WAKE", "--payloads", file, url=jobd_server.url)
    assert ran.status == 1, ran
    assert ran.err.startswith("jobd: error: line 1: body.job_type: ")
    assert "did you mean 'EMAIL'?" in ran.err and "; body.job_sub_type: " in ran.err
    assert [job async for job in jobd_server.client.list_jobs()] == []


async def test_workflow_shows_each_step_and_its_parent(jobd_server: JobdTestServer) -> None:
    sub_type = "REGISTER_CREATE_ACTIVITY"
    root = await jobd_server.client.launch("REGISTRY", sub_type, example_payload(sub_type))

    async def finished_chain() -> list[str]:
        ran = await jobd("workflow", root.session_id, url=jobd_server.url)
        assert ran.status == 0, ran
        return ran.out.splitlines() if ran.out.endswith("done: 2 steps\n") else []

    *table, _ = await eventually(finished_chain, within_s=10, what="the workflow to finish")
    header, first, second = (line.split() for line in table)
    assert header == ["SESSION_ID", "STATUS", "SUB_TYPE", "PARENT", "FINISHED", "INFO"]
    assert first[:4] == [root.session_id, "SUCCEEDED", sub_type, "-"]
    assert second[1:4] == ["SUCCEEDED", "LODGE_CREATE_ACTIVITY", root.session_id]
    missing = await jobd("workflow", "00000000-0000-4000-8000-000000000000", url=jobd_server.url)
    one_error_line(missing, "Item was not found.")


async def test_jobs_list_shows_batch_and_info(jobd_server: JobdTestServer) -> None:
    client = jobd_server.client
    batched = await client.launch("EMAIL", "EMAIL_WAKE_UP", new_batch=True)
    failed = await client.launch("EMAIL", "SEND_EMAIL", {**EMAIL, "email_to": "nobody"})
    for launched in (batched, failed):
        await client.wait(launched.session_id, timeout_s=10)
    ran = await jobd("jobs", "list", url=jobd_server.url)
    header, newest, oldest = ran.out.splitlines()
    assert header.split() == [
        "SESSION_ID", "CREATED", "STATUS", "TYPE", "SUB_TYPE", "USER", "BATCH", "INFO",
    ]  # fmt: skip
    info = (await client.fetch(failed.session_id)).info
    assert info is not None
    # CREATED is three words (date, time and zone).
    assert newest.split()[4] == "FAILED" and newest.split()[8] == "-"
    assert newest.split(None, 9)[9] == (info if len(info) <= 60 else info[:59] + "…")
    assert oldest.split()[8] == batched.batch_id and oldest.split()[9] == "-"


async def test_watch_on_a_finished_job_shows_when_it_finished(tmp_path: Path) -> None:
    clock = FakeClock(start=1_800_000_000.0)  # the job finishes at 2027-01-15 08:00:00 UTC
    settings = from_dict(server_settings(tmp_path, {}))
    async with running(settings, clock=clock) as served, JobdClient(served.url) as client:
        launched = await client.launch("EMAIL", "EMAIL_WAKE_UP")
        job = await client.wait(launched.session_id, timeout_s=10)
        assert job.status is JobStatus.SUCCEEDED
        watch = ["jobs", "watch", launched.session_id, "--url", served.url]
        ran = await finish(await start(*watch, env=environment(TZ="UTC")))
    assert ran.status == 0, ran
    expected = datetime.fromtimestamp(job.finished_timestamp or 0, UTC).strftime("%H:%M:%S")
    assert expected == "08:00:00"
    assert ran.out == f"{expected} UTC  SUCCEEDED\n"  # a wake-up job has no info
