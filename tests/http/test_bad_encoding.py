"""A body whose Content-Encoding lies is the client's error, a 400, never a 500 (issue 18)."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.http.api_helpers import WAKE, call
from tests.http.api_helpers import client as client
from tests.http.api_helpers import server as server

NOT_GZIP = b'{"job_type": "EMAIL"}'


@pytest.mark.parametrize("path", ["/jobs/admin/launch", "/jobs/admin/list"])
@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_body_that_is_not_what_its_content_encoding_says_is_a_400(
    client: TestClient[Any, Any], path: str, encoding: str
) -> None:
    headers = {"Content-Encoding": encoding, "Content-Type": "application/json"}
    body = await call(client, "POST", path, 400, data=NOT_GZIP, headers=headers)
    assert body["detail"].startswith(f"The request body is not valid {encoding}")
    listed = await call(client, "POST", "/jobs/admin/list", 200, json={})
    assert listed["jobs"] == []


async def test_a_real_gzip_body_is_accepted(client: TestClient[Any, Any]) -> None:
    import json

    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    data = gzip.compress(json.dumps(WAKE).encode())
    body = await call(client, "POST", "/jobs/admin/launch", 200, data=data, headers=headers)
    assert body["session_id"]
