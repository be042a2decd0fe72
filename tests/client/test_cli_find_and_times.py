"""The time zone every time the CLI prints carries, run as subprocesses against a real
jobd."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from provena_jobd.cli.output import zone
from provena_jobd.testing import JobdServerFactory, JobdTestServer
from tests.client.handlers import JOBS
from tests.client.test_cli import environment, fields_of, jobd

SYDNEY = "Australia/Sydney"
WAKE = ("EMAIL", "EMAIL_WAKE_UP")


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
