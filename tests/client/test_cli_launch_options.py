"""`jobd launch --idempotency-key` and `--delay`, run as subprocesses against a real jobd."""

from __future__ import annotations

import json
import time
from pathlib import Path

from provena_jobd.cli.output import REPLAYED_NOTE
from provena_jobd.launch_options import DELAY_RULE, KEY_RULE
from provena_jobd.models import JobStatus
from provena_jobd.testing import JobdTestServer
from tests.client.test_cli import jobd, one_error_line
from tests.client.test_cli_bulk_and_workflow import EMAIL, jsonl

WAKE = ("launch", "EMAIL", "EMAIL_WAKE_UP")


async def session_ids(server: JobdTestServer) -> list[str]:
    """Every job's session id, newest first."""
    return [job.session_id async for job in server.client.list_jobs()]


async def test_the_same_key_launches_one_job(jobd_server: JobdTestServer) -> None:
    url = jobd_server.url
    first = await jobd(*WAKE, "--idempotency-key", "order-17", "--json", url=url)
    assert first.status == 0, first
    assert first.json()["replayed"] is False
    again = await jobd(*WAKE, "--idempotency-key", "order-17", "--json", url=url)
    assert again.status == 0, again
    assert again.json() == {**first.json(), "replayed": True}
    assert await session_ids(jobd_server) == [first.json()["session_id"]]
    other = await jobd(*WAKE, "--idempotency-key", "order-17", "--payload", '{"reason": "x"}',
                       url=url)  # fmt: skip
    one_error_line(
        other,
        f"Idempotency-Key 'order-17' was already used for a different launch request (job "
        f"{first.json()['session_id']}); use a new key for a new request.",
    )
    assert await session_ids(jobd_server) == [first.json()["session_id"]]
    fresh = await jobd(*WAKE, "--idempotency-key", "order-18", "--json", url=url)
    assert fresh.status == 0 and fresh.json()["session_id"] != first.json()["session_id"]


async def test_delay_leaves_the_job_pending_until_later(jobd_server: JobdTestServer) -> None:
    before = time.time()
    ran = await jobd(*WAKE, "--delay", "3600", "--json", url=jobd_server.url)
    after = time.time()
    assert ran.status == 0, ran
    session_id = ran.json()["session_id"]
    job = await jobd_server.client.fetch(session_id)
    assert job.status is JobStatus.PENDING and job.attempt == 0
    assert job.info is not None and job.info.startswith("Scheduled: waits until ")
    place = await jobd_server.server.store.queue_place(session_id, time.time())
    assert place is not None and not place.attempted
    assert before + 3600 <= place.run_after <= after + 3600


async def test_bad_values_are_usage_errors_and_launch_nothing(
    jobd_server: JobdTestServer, tmp_path: Path
) -> None:
    payloads = jsonl(tmp_path / "p.jsonl", {"reason": "a"}, {"reason": "b"})  # lines 1 and 3
    cases = [
        (["--delay", "-1"], "--delay", f"{DELAY_RULE}, not '-1'"),
        (["--delay", "soon"], "--delay", f"{DELAY_RULE}, not 'soon'"),
        (["--delay", "nan"], "--delay", f"{DELAY_RULE}, not 'nan'"),
        (["--delay", "inf"], "--delay", f"{DELAY_RULE}, not 'inf'"),
        (["--idempotency-key", ""], "--idempotency-key", KEY_RULE),
        (["--idempotency-key", "x" * 256], "--idempotency-key", KEY_RULE),
        (["--idempotency-key", "tab\there"], "--idempotency-key", KEY_RULE),
        (
            ["--idempotency-key", "x" * 254, "--payloads", payloads],  # x...x-3 is too long
            "--idempotency-key",
            f"{KEY_RULE}, with -N added for line N of --payloads",
        ),
    ]
    for arguments, option, rule in cases:
        ran = await jobd(*WAKE, *arguments, url=jobd_server.url)
        assert ran.status == 2, (arguments, ran)
        errors = [line for line in ran.err.splitlines() if line.startswith("Error:")]
        assert errors == [f"Error: Invalid value for '{option}': {rule}"], (arguments, ran.err)
        assert ran.out == ""
    assert await session_ids(jobd_server) == []


async def test_a_bulk_launch_run_again_with_its_key_launches_only_the_missing_lines(
    jobd_server: JobdTestServer, tmp_path: Path
) -> None:
    url = jobd_server.url
    options = ("--idempotency-key", "mailing-5", "--delay", "3600", "--batch", "new", "--json")
    broken = jsonl(tmp_path / "p.jsonl", EMAIL, {"subject": "no address"}, EMAIL)
    ran = await jobd("launch", "EMAIL", "SEND_EMAIL", "--payloads", broken, *options, url=url)
    assert ran.status == 1 and "line 3: Invalid payload supplied" in ran.err
    [first] = ran.json()
    fixed = jsonl(tmp_path / "p.jsonl", EMAIL, {**EMAIL, "subject": "fixed"}, EMAIL)
    again = await jobd("launch", "EMAIL", "SEND_EMAIL", "--payloads", fixed, *options, url=url)
    assert again.status == 0, again
    launched = again.json()
    assert first["replayed"] is False
    assert launched[0] == {**first, "replayed": True}  # line 1 was launched by the first run
    assert [one["replayed"] for one in launched] == [True, False, False]
    assert len({one["session_id"] for one in launched}) == 3
    assert {one["batch_id"] for one in launched} == {first["batch_id"]}
    assert sorted(await session_ids(jobd_server)) == sorted(one["session_id"] for one in launched)
    for one in launched:  # each waits out its delay
        job = await jobd_server.client.fetch(one["session_id"])
        assert job.status is JobStatus.PENDING
    subjects = [
        json.loads(bytes((await jobd_server.client.fetch(one["session_id"])).payload))["subject"]
        for one in launched
    ]
    assert subjects == ["s", "fixed", "s"]


async def test_a_replayed_launch_says_nothing_new_was_launched(
    jobd_server: JobdTestServer, tmp_path: Path
) -> None:
    url = jobd_server.url
    first = await jobd(*WAKE, "--idempotency-key", "order-19", url=url)
    assert first.status == 0, first
    fields = dict(line.split(None, 1) for line in first.out.splitlines()[1:])
    assert list(fields) == ["session_id", "batch_id"]
    again = await jobd(*WAKE, "--idempotency-key", "order-19", url=url)
    assert again.status == 0, again
    assert dict(line.split(None, 1) for line in again.out.splitlines()[1:]) == {
        **fields,
        "replayed": REPLAYED_NOTE,
    }
    waited = await jobd(*WAKE, "--idempotency-key", "order-19", "--wait", url=url)
    assert waited.status == 0, waited
    assert waited.err.splitlines() == [
        f"replayed: {REPLAYED_NOTE}",
        f"replayed {fields['session_id']}; waiting for it to finish",
    ]
    assert await session_ids(jobd_server) == [fields["session_id"]]

    payloads = jsonl(tmp_path / "p.jsonl", {"reason": "a"}, {"reason": "b"})
    bulk = ("launch", "EMAIL", "EMAIL_WAKE_UP", "--payloads", payloads, "--idempotency-key", "m")
    ran = await jobd(*bulk, "--wait", url=url)
    assert ran.status == 0 and ran.err == "launched 2 jobs; waiting for them to finish\n", ran
    rerun = await jobd(*bulk, "--wait", url=url)
    assert rerun.status == 0, rerun
    assert rerun.err == (
        "launched 0 jobs, replayed 2 (launched earlier with their idempotency keys); "
        "waiting for them to finish\n"
    )
    listed = await jobd(*bulk, url=url)
    assert listed.status == 0, listed
    header, *rows = listed.out.splitlines()
    assert header.split() == ["SESSION_ID", "BATCH_ID", "REPLAYED"]
    assert [row.split()[1:] for row in rows] == [["-", "yes"], ["-", "yes"]]
    assert len(await session_ids(jobd_server)) == 3
