"""A job's life through the real server: launch, fetch at once, finish; bad launches: no trace."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import pytest

from tests.helpers import REFERENCE_JOB_FIELDS
from tests.process import JobdProcess

from .support import (
    STATUS_ORDER,
    Json,
    fetch,
    launch_body,
    list_all_jobs,
    poll,
)

pytestmark = pytest.mark.acceptance


async def launch_then_fetch_at_once(
    session: aiohttp.ClientSession, url: str, body: Json
) -> tuple[Json, int, Json]:
    """Launch, and fetch on the user route as soon as the launch answers."""
    async with session.post(f"{url}/jobs/admin/launch", json=body) as response:
        assert response.status == 200, await response.text()
        launched: Json = await response.json()
    status, fetched = await fetch(session, url, launched["session_id"], route="user")
    return launched, status, fetched


async def watch_until_finished(
    session: aiohttp.ClientSession, url: str, session_id: str
) -> list[Json]:
    """Every distinct state of a job seen on the user route until it is SUCCEEDED or FAILED."""
    seen: list[Json] = []

    async def probe() -> Json:
        status, body = await fetch(session, url, session_id, route="user")
        assert status == 200, body
        job: Json = body["job"]
        if not seen or seen[-1]["status"] != job["status"]:
            seen.append(job)
        return job

    await poll(probe, lambda job: job["status"] in {"SUCCEEDED", "FAILED"}, 15, session_id)
    return seen


@pytest.mark.parametrize("sub_type", ["EMAIL_WAKE_UP", "REGISTRY_WAKE_UP", "PROV_LODGE_WAKE_UP"])
async def test_a_launched_job_is_fetchable_at_once_and_succeeds(
    server: JobdProcess, sub_type: str
) -> None:
    body = launch_body(sub_type)
    before = int(time.time())
    async with aiohttp.ClientSession() as session:
        launched, status, fetched = await launch_then_fetch_at_once(session, server.url, body)
        after = int(time.time())

        assert launched == {"session_id": launched["session_id"], "batch_id": None}
        assert uuid.UUID(launched["session_id"]).version == 4
        assert status == 200, f"a launched job must be fetchable at once, got {status}: {fetched}"
        job = fetched["job"]
        assert REFERENCE_JOB_FIELDS <= set(job), REFERENCE_JOB_FIELDS - set(job)
        assert job["session_id"] == launched["session_id"]
        assert job["status"] in STATUS_ORDER
        assert before <= job["created_timestamp"] <= after
        assert isinstance(job["created_timestamp"], int)
        assert job["username"] == "local"
        assert job["batch_id"] is None
        assert job["payload"] == body["job_payload"]
        assert (job["job_type"], job["job_sub_type"]) == (body["job_type"], sub_type)
        assert job["gsi_status"] == "ok"

        states = await watch_until_finished(session, server.url, launched["session_id"])

    final = states[-1]
    assert final["status"] == "SUCCEEDED", final
    assert final["result"] == {}
    assert final["info"] is None
    order = [STATUS_ORDER.index(state["status"]) for state in states]
    assert order == sorted(order), f"status went backwards: {[s['status'] for s in states]}"
    unchanged = ("session_id", "created_timestamp", "username", "batch_id", "payload")
    assert {k: final[k] for k in unchanged} == {k: job[k] for k in unchanged}


async def test_a_burst_of_launches_is_each_fetchable_at_once(server: JobdProcess) -> None:
    async with aiohttp.ClientSession() as session:
        answers = await asyncio.gather(
            *(launch_then_fetch_at_once(session, server.url, launch_body()) for _ in range(50))
        )
        never_found = [(status, body) for _, status, body in answers if status != 200]
        assert never_found == [], "a launched job answered 400/other on its first fetch"
        ids = {launched["session_id"] for launched, _, _ in answers}
        assert len(ids) == 50

        async def finished() -> list[Json]:
            return [
                job for job in await list_all_jobs(session, server.url) if job["session_id"] in ids
            ]

        jobs = await poll(
            finished,
            lambda jobs: len(jobs) == 50 and all(j["status"] == "SUCCEEDED" for j in jobs),
            20,
            "50 wake-ups to succeed",
            0.05,
        )
    assert all(job["result"] == {} for job in jobs)


BAD_LAUNCHES: dict[str, tuple[bytes | dict[str, Any], int]] = {
    "malformed JSON": (b'{"job_type": "EMAIL", "job_sub_type": ', 422),
    "no body": (b"", 422),
    "JSON that is not an object": (b'["EMAIL", "EMAIL_WAKE_UP"]', 422),
    "unknown job type": (launch_body() | {"job_type": "FAX"}, 422),
    "unknown job sub type": (launch_body() | {"job_sub_type": "FAX_WAKE_UP"}, 422),
    "missing job_payload": (
        {"job_type": "EMAIL", "job_sub_type": "EMAIL_WAKE_UP"},
        422,
    ),
    "job_payload not an object": (launch_body() | {"job_payload": [1, 2]}, 422),
    "sub type of another job type": (launch_body() | {"job_type": "REGISTRY"}, 400),
    "add_to_batch naming no batch": (launch_body(add_to_batch=str(uuid.uuid4())), 400),
    "both a new batch and an existing one": (
        launch_body(request_batch_id=True, add_to_batch=str(uuid.uuid4())),
        422,
    ),
    # 7 would pass: the reference coerces it to "7", as jobd does
    "payload failing the sub type's model": (launch_body() | {"job_payload": {"reason": [7]}}, 400),
}


async def test_bad_launches_are_refused_with_a_detail_and_change_nothing(
    server: JobdProcess,
) -> None:
    async with aiohttp.ClientSession() as session:
        for case, (body, expected) in BAD_LAUNCHES.items():
            data = body if isinstance(body, bytes) else None
            as_json = body if isinstance(body, dict) else None
            async with session.post(
                f"{server.url}/jobs/admin/launch",
                data=data,
                json=as_json,
                headers={"Content-Type": "application/json"},
            ) as response:
                answer = await response.json(content_type=None)
                assert response.status == expected, f"{case}: {response.status} {answer}"
            assert isinstance(answer, dict) and "detail" in answer, f"{case}: {answer}"
            assert answer["detail"], f"{case}: an empty detail explains nothing"

        async with session.post(f"{server.url}/jobs/admin/list", json={}) as response:
            assert response.status == 200
            assert await response.json() == {"jobs": [], "pagination_key": None}
        async with session.post(f"{server.url}/jobs/user/list", json={}) as response:
            assert response.status == 200
            assert await response.json() == {"jobs": [], "pagination_key": None}

        # And the server is still healthy: a good launch after the bad ones works.
        async with session.post(f"{server.url}/jobs/admin/launch", json=launch_body()) as response:
            assert response.status == 200, await response.text()
        assert len(await list_all_jobs(session, server.url)) == 1
