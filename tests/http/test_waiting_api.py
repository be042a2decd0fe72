"""`waiting` on fetch and each worker on `/admin/pool`: why a job has not started."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from provena_jobd.server import JobdServer
from tests.helpers import eventually
from tests.http.test_api import call, client, launch, server

__all__ = ["client", "server"]  # the fixtures


async def test_a_pending_job_in_a_cold_start_says_so(
    client: TestClient[Any, Any], server: JobdServer
) -> None:
    first = await launch(client)
    second = await launch(client)

    async def provisioning() -> dict[str, Any] | None:
        pools = await call(client, "GET", "/admin/pool", 200)
        email = next(p for p in pools["pools"] if p["job_type"] == "EMAIL")
        return email if email["worker_list"] else None

    email = await eventually(provisioning, what="a worker provisioning")
    worker = email["worker_list"][0]
    assert {w["state"] for w in email["worker_list"]} == {"provisioning"}
    assert worker["ready_at"] == worker["since"] + 1e9  # the fixture's cold start
    body = await call(client, "GET", f"/jobs/user/fetch?session_id={second['session_id']}", 200)
    assert body["waiting"]["reason"] == "cold_start"
    assert body["waiting"]["ready_at"] == worker["ready_at"]
    assert body["waiting"]["ahead"] == 1  # the first job
    assert "finish starting (cold start)" in body["waiting"]["message"]
    cancelled = await call(
        client, "POST", f"/jobs/user/cancel?session_id={first['session_id']}", 200
    )
    assert "waiting" not in cancelled  # ended jobs do not wait
    ended = await call(client, "GET", f"/jobs/admin/fetch?session_id={first['session_id']}", 200)
    assert "waiting" not in ended


async def test_history_follows_the_fetch_access_rules(client: TestClient[Any, Any]) -> None:
    mine = await launch(client)
    theirs = await launch(client, username="bob")
    body = await call(client, "GET", f"/jobs/user/history?session_id={mine['session_id']}", 200)
    assert body == {"session_id": mine["session_id"], "attempts": []}  # never claimed yet
    await call(client, "GET", f"/jobs/user/history?session_id={theirs['session_id']}", 401)
    await call(client, "GET", "/jobs/admin/history?session_id=nope", 400)
    await call(client, "GET", "/jobs/admin/history", 422)
    admin = await call(client, "GET", f"/jobs/admin/history?session_id={theirs['session_id']}", 200)
    assert admin["attempts"] == []


async def test_a_job_of_a_paused_type_says_its_type_is_paused(client: TestClient[Any, Any]) -> None:
    await call(client, "POST", "/admin/pause?job_type=EMAIL", 200)
    waiting = await launch(client)
    body = await call(client, "GET", f"/jobs/user/fetch?session_id={waiting['session_id']}", 200)
    assert body["waiting"]["reason"] == "paused"
    assert "EMAIL is paused" in body["waiting"]["message"]
    await call(client, "POST", "/admin/resume?job_type=EMAIL", 200)
    body = await call(client, "GET", f"/jobs/user/fetch?session_id={waiting['session_id']}", 200)
    assert body["waiting"]["reason"] != "paused"
