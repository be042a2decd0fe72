"""`/openapi.json` is served, lists the public routes, and its schemas match real responses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient

from provena_jobd.http.app import create_app
from provena_jobd.server import JobdServer
from tests.helpers import ServedAsJobd, settings_for

REFERENCE_PATHS = {
    "/",
    "/admin/config",
    "/check-access/check-general-access",
    "/check-access/check-read-access",
    "/check-access/check-write-access",
    "/check-access/check-admin-access",
    "/jobs/admin/fetch",
    "/jobs/admin/launch",
    "/jobs/admin/list",
    "/jobs/admin/list_batch",
    "/jobs/user/fetch",
    "/jobs/user/list",
    "/jobs/user/list_batch",
}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    server = JobdServer(settings_for(tmp_path))
    await server.start()
    async with TestClient(ServedAsJobd(create_app(server))) as test_client:
        yield test_client
    await server.stop(grace_s=0)


async def test_the_document_lists_the_public_routes(client: TestClient[Any, Any]) -> None:
    response = await client.get("/openapi.json")
    assert response.status == 200
    document = msgspec.json.decode(await response.read())
    # The reference's routes (sentry-debug aside) and jobd's own, with the retry routes the
    # reference hides only while they are stubs (jobd implements them).
    jobd_paths = {
        "/jobs/user/retry",
        "/jobs/admin/retry",
        "/admin/pool",
        "/jobs/user/cancel",
        "/jobs/admin/cancel",
        "/jobs/user/batch_summary",
        "/jobs/admin/batch_summary",
        "/jobs/user/workflow",
        "/jobs/admin/workflow",
        "/jobs/user/events",
        "/jobs/admin/events",
        "/jobs/worker/claim",
        "/jobs/worker/start",
        "/jobs/worker/heartbeat",
        "/jobs/worker/progress",
        "/jobs/worker/finish",
        "/jobs/worker/release",
        "/admin/schedules",
        "/admin/paused",
        "/admin/pause",
        "/admin/resume",
        "/jobs/catalog",
        "/jobs/user/history",
        "/jobs/admin/history",
    }
    assert set(document["paths"]) == REFERENCE_PATHS | jobd_paths
    launch = document["paths"]["/jobs/admin/launch"]["post"]
    assert launch["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/LaunchJobRequest"
    }
    job = document["components"]["schemas"]["Job"]
    assert {"session_id", "status", "info", "result", "gsi_status"} <= set(job["required"]) | {
        "gsi_status"
    }


async def test_the_launch_route_declares_its_idempotency_key_header(
    client: TestClient[Any, Any],
) -> None:
    document = msgspec.json.decode(await (await client.get("/openapi.json")).read())
    headers = {
        (path, method): parameter
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "header"
    }
    assert list(headers) == [("/jobs/admin/launch", "post")]
    header = headers["/jobs/admin/launch", "post"]
    assert header["name"] == "Idempotency-Key" and header["required"] is False
    assert header["schema"] == {"type": "string", "minLength": 1, "maxLength": 255}
    assert "409" in header["description"] and "idempotency_ttl_s" in header["description"]
