"""A URL, header or body past jobd's limits gets the documented JSON error and changes nothing.

Over a real listener (`running`), which raises aiohttp's own parser limits: without that, the
parser answers a long URL or header with a plain-text 400 before jobd sees the request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestClient

from provena_jobd.clock import FakeClock
from provena_jobd.http.serve import running
from tests.helpers import settings_for
from tests.http.api_helpers import WAKE, call, client, detail, server

__all__ = ["client", "server"]  # the fixtures

LAUNCH = "/jobs/admin/launch"
BODY_LIMIT = 64 * 1024


@pytest.fixture
async def url(tmp_path: Path) -> AsyncIterator[str]:
    """A jobd listening on a free port, whose jobs stay PENDING."""
    settings = settings_for(
        tmp_path, server={"port": 0, "max_body_bytes": BODY_LIMIT}, pool={"cold_start_s": 1e9}
    )
    async with running(settings, clock=FakeClock()) as jobd:
        yield jobd.url


async def answer(url: str, path: str, **kwargs: Any) -> tuple[int, str, Any]:
    """POST `path`; returns the status, the content type and the body (JSON when it is)."""
    async with aiohttp.ClientSession() as session:
        async with session.post(url + path, **kwargs) as response:
            json = response.content_type == "application/json"
            body = await response.json() if json else await response.text()
            return response.status, response.content_type, body


async def jobs(url: str) -> list[Any]:
    """Every job jobd holds."""
    status, _, body = await answer(url, "/jobs/admin/list", json={})
    assert status == 200
    jobs: list[Any] = body["jobs"]
    return jobs


async def refused(url: str, status: int, path: str = LAUNCH, **kwargs: Any) -> str:
    """POST, expect `status` with a JSON `detail` and no job launched; returns the detail."""
    got, kind, body = await answer(url, path, **kwargs)
    assert (got, kind) == (status, "application/json"), body
    assert await jobs(url) == []
    text: str = detail(body)
    return text


def launch_path(url_bytes: int) -> str:
    """The launch route with a query that makes the request target `url_bytes` long."""
    path = f"{LAUNCH}?pad="
    return path + "a" * (url_bytes - len(path))


async def test_a_url_of_9000_bytes_gets_414_naming_the_limit(url: str) -> None:
    text = await refused(url, 414, launch_path(9000), json=WAKE)
    assert text == (
        "Request URL too long: the limit is 8190 bytes (path and query); this one is 9000. "
        "Send long values in the request body."
    )


async def test_a_url_of_8190_bytes_is_served(url: str) -> None:
    status, _, body = await answer(url, launch_path(8190), json=WAKE)
    assert status == 200, body
    assert [job["session_id"] for job in await jobs(url)] == [body["session_id"]]


async def test_a_header_of_9000_bytes_gets_431_naming_the_header_and_the_limit(url: str) -> None:
    headers = {"X-Padding": "a" * (9000 - len("X-Padding"))}
    text = await refused(url, 431, json=WAKE, headers=headers)
    assert text == (
        "Request header 'X-Padding' too large: the limit is 8190 bytes for one header "
        "(name and value); this one is 9000."
    )


async def test_a_header_of_8190_bytes_is_served(url: str) -> None:
    headers = {"X-Padding": "a" * (8190 - len("X-Padding"))}
    status, _, body = await answer(url, LAUNCH, json=WAKE, headers=headers)
    assert status == 200, body


async def test_a_431_never_shows_the_headers_value(url: str) -> None:
    secret = "s3cr3t-" * 1300
    text = await refused(url, 431, json=WAKE, headers={"Authorization": f"Bearer {secret}"})
    assert "'Authorization'" in text
    assert "s3cr3t" not in text


async def test_headers_of_over_32768_bytes_together_get_431(url: str) -> None:
    headers = {f"X-Padding-{i}": "a" * 7000 for i in range(5)}
    text = await refused(url, 431, json=WAKE, headers=headers)
    assert text.startswith(
        "Request headers too large: the limit is 32768 bytes for all headers together"
    )


def oversized_body() -> bytes:
    return msgspec.json.encode({**WAKE, "job_payload": {"blob": "x" * BODY_LIMIT}})


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    """`data` sent chunked, without a Content-Length."""
    for start in range(0, len(data), 8192):
        yield data[start : start + 8192]


@pytest.mark.parametrize("sent", ["with Content-Length", "chunked"])
async def test_a_body_over_max_body_bytes_gets_413_naming_the_limit(url: str, sent: str) -> None:
    data = oversized_body()
    body: Any = data if sent == "with Content-Length" else chunks(data)
    headers = {"Content-Type": "application/json"}
    text = await refused(url, 413, data=body, headers=headers)
    assert text == f"Request body too large: the limit is {BODY_LIMIT} bytes."


async def test_past_the_parsers_raised_limits_aiohttp_answers_a_plain_400(url: str) -> None:
    # The documented line (README "Request limits"): a URL over 65536 bytes or a header value
    # over 16384 never reaches jobd. Still nothing is launched.
    for kwargs in (
        {"path": launch_path(65537)},
        {"path": LAUNCH, "headers": {"X-Padding": "a" * 16385}},
    ):
        status, kind, _ = await answer(url, json=WAKE, **kwargs)
        assert (status, kind) == (400, "text/plain")
    assert await jobs(url) == []


async def test_the_suites_test_client_parses_requests_as_jobd_serve_does(
    client: TestClient[Any, Any],
) -> None:
    # The HTTP suites' TestClient (api_helpers) gets `jobd serve`'s parser limits: a URL or
    # header past aiohttp's defaults reaches jobd, and gets its JSON answer, as users see.
    await call(client, "POST", launch_path(9000), 414, json=WAKE)
    headers = {"X-Padding": "a" * (9000 - len("X-Padding"))}
    await call(client, "POST", LAUNCH, 431, json=WAKE, headers=headers)
    assert (await call(client, "POST", "/jobs/admin/list", 200, json={}))["jobs"] == []
