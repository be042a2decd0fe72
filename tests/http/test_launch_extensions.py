"""Idempotent and delayed launches over HTTP (issue 14)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from provena_jobd.clock import FakeClock
from provena_jobd.http.app import create_app
from provena_jobd.server import JobdServer
from tests.helpers import ServedAsJobd, settings_for
from tests.http.api_helpers import WAKE, call, detail, launch

NOW = 1_800_000_000.0


@pytest.fixture
async def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
async def server(tmp_path: Path, clock: FakeClock) -> AsyncIterator[JobdServer]:
    settings = settings_for(tmp_path, pool={"cold_start_s": 1e9}, queue={"max_delay_s": 3600})
    jobd = JobdServer(settings, clock=clock)
    await jobd.start()
    yield jobd
    await jobd.stop(grace_s=0)


@pytest.fixture
async def client(server: JobdServer) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(ServedAsJobd(create_app(server))) as test_client:
        yield test_client


async def count_jobs(client: TestClient[Any, Any]) -> int:
    page = await call(client, "POST", "/jobs/admin/list", 200, json={"limit": 100})
    return len(page["jobs"])


async def test_a_repeated_key_returns_the_first_job_and_launches_nothing(
    client: TestClient[Any, Any],
) -> None:
    headers = {"Idempotency-Key": "order-17"}
    body = {**WAKE, "request_batch_id": True}
    first = await client.post("/jobs/admin/launch", json=body, headers=headers)
    again = await client.post("/jobs/admin/launch", json=body, headers=headers)
    assert (first.status, again.status) == (200, 200)
    one, two = await first.json(), await again.json()
    assert one == two and one["batch_id"] is not None
    # Only the repeat says it launched nothing new.
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    via_body = await launch(client, request_batch_id=True, idempotency_key="order-17")
    assert via_body == one
    assert await count_jobs(client) == 1


async def test_racing_launches_with_one_key_launch_once(client: TestClient[Any, Any]) -> None:
    answers = await asyncio.gather(*(launch(client, idempotency_key="same") for _ in range(10)))
    assert len({answer["session_id"] for answer in answers}) == 1
    assert await count_jobs(client) == 1


async def test_a_key_reused_for_another_request_is_a_409_and_launches_nothing(
    client: TestClient[Any, Any],
) -> None:
    first = await launch(client, idempotency_key="k")
    other = {**WAKE, "job_payload": {"x": 1}, "idempotency_key": "k"}
    refused = await call(client, "POST", "/jobs/admin/launch", 409, json=other)
    assert "already used for a different launch request" in detail(refused)
    assert first["session_id"] in detail(refused)
    assert await count_jobs(client) == 1


async def test_a_key_is_forgotten_after_its_ttl(
    client: TestClient[Any, Any], clock: FakeClock
) -> None:
    first = await launch(client, idempotency_key="k")
    await clock.advance(24 * 3600)
    second = await launch(client, idempotency_key="k")
    assert second["session_id"] != first["session_id"]


BODY_KEY = ["body", "idempotency_key"]
HEADER_KEY = ["header", "Idempotency-Key"]
KEY_RULE = "1 to 255 printable characters"


@pytest.mark.parametrize(
    ("extra", "headers", "loc", "problem"),
    [
        ({"idempotency_key": "a"}, {"Idempotency-Key": "b"}, BODY_KEY, "differs from the"),
        ({"idempotency_key": ""}, {}, BODY_KEY, KEY_RULE),
        ({"idempotency_key": "x" * 256}, {}, BODY_KEY, KEY_RULE),
        # A bad key sent as the header is reported at the header, not at the body.
        ({}, {"Idempotency-Key": "k" * 300}, HEADER_KEY, KEY_RULE),
        ({}, {"Idempotency-Key": ""}, HEADER_KEY, KEY_RULE),
        ({"idempotency_key": "k" * 300}, {"Idempotency-Key": "k" * 300}, HEADER_KEY, KEY_RULE),
        ({"delay_s": -1}, {}, ["body", "delay_s"], "0 or more"),
        ({"delay_s": 10, "not_before": NOW + 10}, {}, ["body", "delay_s"], "not both"),
        ({"delay_s": 3601}, {}, ["body", "delay_s"], "at most 3600 seconds"),
        ({"not_before": NOW + 3601}, {}, ["body", "not_before"], "at most 3600 seconds"),
    ],
)
async def test_bad_extensions_are_422_and_launch_nothing(
    client: TestClient[Any, Any],
    extra: dict[str, Any],
    headers: dict[str, str],
    loc: list[str],
    problem: str,
) -> None:
    body = await call(
        client, "POST", "/jobs/admin/launch", 422, json={**WAKE, **extra}, headers=headers
    )
    [found] = detail(body)
    assert found["loc"] == loc and problem in found["msg"]
    assert await count_jobs(client) == 0


async def test_a_not_before_too_far_is_reported_at_not_before(
    client: TestClient[Any, Any],
) -> None:
    body = await call(
        client, "POST", "/jobs/admin/launch", 422, json={**WAKE, "not_before": NOW + 1e12}
    )
    assert detail(body)[0]["loc"] == ["body", "not_before"]
    assert await count_jobs(client) == 0


async def test_a_delayed_job_waits_pending_and_says_until_when(
    client: TestClient[Any, Any], server: JobdServer
) -> None:
    answer = await launch(client, delay_s=90)
    job = (await call(client, "GET", f"/jobs/admin/fetch?session_id={answer['session_id']}", 200))[
        "job"
    ]
    assert job["status"] == "PENDING"
    assert job["info"] == "Scheduled: waits until 2027-01-15 08:01:30 UTC before it runs."
    at = await launch(client, not_before=NOW + 30)
    fetched = await server.service.fetch(at["session_id"], None)
    assert fetched.info == "Scheduled: waits until 2027-01-15 08:00:30 UTC before it runs."


async def test_a_not_before_already_past_launches_the_job_as_due_now(
    client: TestClient[Any, Any], server: JobdServer
) -> None:
    # A caller whose clock is behind jobd's (or a retry of an old request) is not refused.
    answer = await launch(client, not_before=NOW - 3600)
    body = await call(client, "GET", f"/jobs/admin/fetch?session_id={answer['session_id']}", 200)
    assert not (body["job"]["info"] or "").startswith("Scheduled")
    assert body.get("waiting", {}).get("reason") != "scheduled"
