"""Shared helpers of the HTTP suites: a server whose jobs stay PENDING, its test client, and
calls that check the status and the JSON of each answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from provena_jobd.clock import FakeClock
from provena_jobd.http.app import create_app
from provena_jobd.server import JobdServer
from tests.helpers import ServedAsJobd, settings_for

WAKE = {"job_type": "EMAIL", "job_sub_type": "EMAIL_WAKE_UP", "job_payload": {}}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[JobdServer]:
    """A started server on a fake clock whose jobs stay PENDING."""
    # Workers never become ready (huge cold start), so jobs stay PENDING and lists are stable.
    settings = settings_for(
        tmp_path, pool={"cold_start_s": 1e9}, server={"max_body_bytes": 64 * 1024}
    )
    jobd = JobdServer(settings, clock=FakeClock())
    await jobd.start()
    yield jobd
    await jobd.stop(grace_s=0)


@pytest.fixture
async def client(server: JobdServer) -> AsyncIterator[TestClient[Any, Any]]:
    """A test client of `server`."""
    async with TestClient(ServedAsJobd(create_app(server))) as test_client:
        yield test_client


async def call(
    client: TestClient[Any, Any], method: str, path: str, expect: int, **kwargs: Any
) -> Any:
    """Send a request, check its status and JSON content type; returns the decoded body."""
    response = await client.request(method, path, **kwargs)
    assert response.status == expect, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


async def launch(client: TestClient[Any, Any], **overrides: Any) -> dict[str, Any]:
    """Launch a wake-up job (with `overrides`) as admin; returns the answer."""
    body: dict[str, Any] = await call(
        client, "POST", "/jobs/admin/launch", 200, json={**WAKE, **overrides}
    )
    return body


def detail(body: Any) -> Any:
    """The `detail` of an error body, which holds nothing else."""
    assert set(body) == {"detail"}
    return body["detail"]
