"""The admin routes of issue 14: schedules, pause and resume."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from provena_jobd.clock import FakeClock
from provena_jobd.config import from_dict
from provena_jobd.http.app import create_app
from provena_jobd.server import JobdServer
from tests.helpers import ServedAsJobd
from tests.http.api_helpers import call, detail, launch

NOW = 1_800_000_000.0 + 30  # 08:00:30 UTC


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    settings = from_dict(
        {
            "storage": {"db": str(tmp_path / "jobd.db")},
            "pool": {"cold_start_s": 1e9},
            "schedules": [
                {
                    "name": "hourly-wake",
                    "cron": "0 * * * *",
                    "job_type": "EMAIL",
                    "job_sub_type": "EMAIL_WAKE_UP",
                    "user": "ops",
                }
            ],
        }
    )
    jobd = JobdServer(settings, clock=FakeClock(NOW))
    await jobd.start()
    async with TestClient(ServedAsJobd(create_app(jobd))) as test_client:
        yield test_client
    await jobd.stop(grace_s=0)


async def test_schedules_are_listed_with_their_next_run(client: TestClient[Any, Any]) -> None:
    body = await call(client, "GET", "/admin/schedules", 200)
    [shown] = body["schedules"]
    assert shown["name"] == "hourly-wake" and shown["cron"] == "0 * * * *"
    assert shown["next_run_at"] == 1_800_000_000.0 + 3600


async def test_pause_and_resume_a_job_type(client: TestClient[Any, Any]) -> None:
    job = await launch(client)
    assert await call(client, "POST", "/admin/pause?job_type=EMAIL", 200) == {"paused": ["EMAIL"]}
    assert await call(client, "GET", "/admin/paused", 200) == {"paused": ["EMAIL"]}
    fetched = await call(client, "GET", f"/jobs/admin/fetch?session_id={job['session_id']}", 200)
    assert fetched["job"]["status"] == "PENDING"
    assert "EMAIL is paused" in fetched["job"]["info"]
    assert (await launch(client))["session_id"]  # launches are still accepted
    assert await call(client, "POST", "/admin/resume?job_type=EMAIL", 200) == {"paused": []}
    fetched = await call(client, "GET", f"/jobs/admin/fetch?session_id={job['session_id']}", 200)
    assert fetched["job"]["info"] is None


async def test_pausing_an_unknown_type_is_refused(client: TestClient[Any, Any]) -> None:
    body = await call(client, "POST", "/admin/pause?job_type=EMIAL", 400)
    assert "Unknown job type 'EMIAL'" in detail(body)
    assert await call(client, "GET", "/admin/paused", 200) == {"paused": []}
    missing = await call(client, "POST", "/admin/resume", 422)
    assert detail(missing)[0]["loc"] == ["query", "job_type"]
