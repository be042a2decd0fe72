"""Finding jobs from the CLI (`jobs list --search/--status`, a partial id given to `show`) and
the time zone every printed time carries, run as subprocesses against a real jobd."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from provena_jobd.cli.output import zone
from provena_jobd.models import JobStatus
from provena_jobd.testing import JobdServerFactory, JobdTestServer
from tests.client.handlers import JOB_TYPE, JOBS, STEP
from tests.client.test_cli import environment, fields_of, jobd, one_error_line

SYDNEY = "Australia/Sydney"
WAKE = ("EMAIL", "EMAIL_WAKE_UP")
NOT_A_JOB = "00000000-0000-4000-8000-000000000000"  # a whole id no job has


@pytest.fixture
async def server(jobd_server_factory: JobdServerFactory) -> JobdTestServer:
    """A jobd that also runs the tests' STEP jobs (they fail on `{"fail": ...}`)."""
    return await jobd_server_factory(jobs=JOBS)


def local(timestamp: float, tz: str) -> str:
    """How the CLI should print `timestamp` with TZ=`tz` (the zone from tzdata, not `time`)."""
    return datetime.fromtimestamp(timestamp, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S %Z")


async def test_times_say_their_zone_and_agree_with_jobds_utc_texts(
    server: JobdTestServer,
) -> None:
    delayed = (await server.client.launch(*WAKE, delay_s=3600)).session_id
    sydney = environment(TZ=SYDNEY)
    shown = await jobd("jobs", "show", delayed, url=server.url, env=sydney)
    assert shown.status == 0, shown
    rows = fields_of(shown)
    job = (await jobd("jobs", "show", delayed, "--json", url=server.url)).json()
    assert rows["created"] == local(job["created_timestamp"], SYDNEY)
    assert rows["ready_at"] == local(job["waiting"]["ready_at"], SYDNEY)
    # The newcomer's case: jobd's sentence says UTC; ready_at is the same instant, in Sydney.
    utc_text = rows["why"].removeprefix("Scheduled: waits until ").split(" UTC")[0]
    said = datetime.strptime(utc_text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert rows["ready_at"] == local(said.timestamp(), SYDNEY)
    assert rows["started"] == "-"  # no time, no zone

    listed = await jobd("jobs", "list", url=server.url, env=sydney)
    assert local(job["created_timestamp"], SYDNEY) in listed.out.splitlines()[1]


async def test_jobs_watch_stamps_each_line_with_its_zone(server: JobdTestServer) -> None:
    launched = await server.client.launch(*WAKE)
    job = await server.client.wait(launched.session_id, timeout_s=10)
    assert job.finished_timestamp is not None
    newfoundland = "America/St_Johns"  # a half-hour offset: NST or NDT
    ran = await jobd(
        "jobs", "watch", launched.session_id, url=server.url, env=environment(TZ=newfoundland)
    )
    assert ran.status == 0, ran
    clock = local(job.finished_timestamp, newfoundland).split(" ", 1)[1]
    assert ran.out.startswith(f"{clock}  SUCCEEDED")


def test_a_zone_without_a_short_name_is_its_utc_offset() -> None:
    # Windows names zones in full; the table would grow by twenty characters.
    sydney = "AUS Eastern Daylight Time"
    windows = time.struct_time((2026, 12, 2, 7, 46, 35, 2, 336, 1, sydney, 39600))
    assert zone(windows) == "+11:00"
    unnamed = time.struct_time((2026, 12, 2, 7, 46, 35, 2, 336, 0, "", -12600))
    assert zone(unnamed) == "-03:30"
    assert zone(time.localtime(0)) == time.localtime(0).tm_zone  # a system's name is kept


async def test_search_finds_a_job_by_the_tail_of_its_id(server: JobdTestServer) -> None:
    ids = [(await server.client.launch(*WAKE)).session_id for _ in range(3)]
    tail = ids[1][-8:]
    found = await jobd("jobs", "list", "--search", tail, "--json", url=server.url)
    assert found.status == 0, found
    assert [job["session_id"] for job in found.json()] == [ids[1]]
    upper = await jobd("jobs", "list", "--search", tail.upper(), url=server.url)
    assert [row.split()[0] for row in upper.out.splitlines()[1:]] == [ids[1]]
    nothing = await jobd("jobs", "list", "--search", "no job has this", "--json", url=server.url)
    assert (nothing.status, nothing.json()) == (0, [])


async def test_status_filters_the_list_and_a_batch(server: JobdTestServer) -> None:
    client = server.client
    ok = await client.launch(JOB_TYPE, STEP, new_batch=True)
    assert ok.batch_id is not None
    failed = await client.launch(JOB_TYPE, STEP, {"fail": "no"}, batch_id=ok.batch_id)
    alone = await client.launch(JOB_TYPE, STEP, {"fail": "also no"})
    for launched in (ok, failed, alone):
        await client.wait(launched.session_id, timeout_s=10)

    failures = await jobd("jobs", "list", "--status", "FAILED", "--json", url=server.url)
    assert [job["session_id"] for job in failures.json()] == [alone.session_id, failed.session_id]
    in_batch = await jobd(
        "jobs", "list", "--batch", ok.batch_id, "--status", "failed", "--json", url=server.url
    )
    assert [job["session_id"] for job in in_batch.json()] == [failed.session_id]
    both = await jobd(
        "jobs", "list", "--status", "succeeded", "--search", ok.session_id[-8:], "--json",
        url=server.url,
    )  # fmt: skip
    assert [(job["session_id"], job["status"]) for job in both.json()] == [
        (ok.session_id, JobStatus.SUCCEEDED.value)
    ]


async def test_a_bad_status_or_search_is_a_usage_error(server: JobdTestServer) -> None:
    bad = await jobd("jobs", "list", "--status", "DONE", url=server.url)
    assert (bad.status, bad.out) == (2, "")
    assert "Invalid value for '--status': 'DONE' is not a status; use one of PENDING, " in bad.err
    empty = await jobd("jobs", "list", "--search", "", url=server.url)
    assert (empty.status, empty.out) == (2, "")
    assert "Invalid value for '--search': give some text to search for" in empty.err
    too_long = await jobd("jobs", "list", "--search", "x" * 201, url=server.url)
    assert too_long.status == 2 and "at most 200 characters, not 201" in too_long.err


async def test_a_partial_id_says_how_to_find_the_job(server: JobdTestServer) -> None:
    session_id = (await server.client.launch(*WAKE)).session_id
    tail = session_id[-8:]
    partial = await jobd("jobs", "show", tail, url=server.url)
    hint = f"jobd jobs list --search {tail}"
    one_error_line(
        partial,
        f"Item was not found. {tail!r} is not a whole session id; to find the job by part of "
        f"its id: {hint}",
    )
    followed = await jobd(*hint.split()[1:], "--json", url=server.url)
    assert [job["session_id"] for job in followed.json()] == [session_id]
    as_admin = await jobd("jobs", "show", tail, "--admin", url=server.url)
    assert as_admin.err.endswith(f": jobd jobs list --admin --search {tail}\n")
    for command in (("jobs", "watch"), ("workflow",), ("retry",), ("cancel",)):
        ran = await jobd(*command, tail, url=server.url)
        assert ran.status == 1 and ran.err.endswith(f": {hint}\n"), (command, ran)
    whole = await jobd("jobs", "show", NOT_A_JOB, url=server.url)
    one_error_line(whole, "Item was not found.")  # a whole id: nothing to search for


async def test_a_zone_tzdata_abbreviates_by_number_prints_that_number(
    server: JobdTestServer,
) -> None:
    # America/Sao_Paulo has no letters in tzdata: its abbreviation is `-03`, printed as it is
    # (not `-03:00`, the fallback for a system that names no zone), as README says.
    launched = await server.client.launch(*WAKE)
    job = await server.client.wait(launched.session_id, timeout_s=10)
    sao_paulo = "America/Sao_Paulo"
    shown = fields_of(await jobd("jobs", "show", job.session_id, url=server.url,
                                 env=environment(TZ=sao_paulo)))  # fmt: skip
    assert shown["created"] == local(job.created_timestamp, sao_paulo)
    assert shown["created"].endswith(" -03")
