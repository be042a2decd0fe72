"""The panel's files and the API docs' assets: served as files, and every error, a missing
file first, is `{"detail": ...}` like the rest of the API."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from provena_jobd.http.ui_routes import UI_FOLDER
from provena_jobd.metrics import sample
from tests.http.api_helpers import call, detail
from tests.http.api_helpers import client as client
from tests.http.api_helpers import server as server

__all__ = ["client", "server"]  # the fixtures


@pytest.mark.parametrize(
    "path",
    [
        "/ui/nonexistent.js",
        "/docs/assets/x.js",
        "/redoc/assets/x",
        "/ui/views",  # a folder, not a file
        "/ui/views/nonexistent.js",
    ],
)
async def test_a_missing_static_file_is_a_json_404(client: TestClient[Any, Any], path: str) -> None:
    assert detail(await call(client, "GET", path, 404)) == "Not Found"
    head = await client.head(path)
    assert (head.status, head.content_type) == (404, "application/json")


@pytest.mark.parametrize(
    "path",
    [
        "/ui/..%2Fui_routes.py",  # a file next to the panel's folder, not in it
        "/ui/%2e%2e%2f%2e%2e%2fserver.py",
        "/ui//etc/passwd",
        "/docs/assets/..%2F..%2Fredoc%2Fvendor%2Findex.html",
        "/ui/%00",
        "/ui/" + "a" * 5000,  # longer than a file name may be
    ],
)
async def test_no_name_reaches_a_file_outside_the_folder(
    client: TestClient[Any, Any], path: str
) -> None:
    # Sent as raw bytes: aiohttp's client would resolve the dots before sending.
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: jobd\r\nConnection: close\r\n\r\n".encode())
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404 ")
    assert b"Content-Type: application/json" in head and body == b'{"detail":"Not Found"}'


async def test_a_range_past_the_end_of_a_file_is_a_json_416(client: TestClient[Any, Any]) -> None:
    size = (UI_FOLDER / "app.js").stat().st_size
    body = await call(client, "GET", "/ui/app.js", 416, headers={"Range": f"bytes={size + 10}-"})
    assert detail(body) == "Requested Range Not Satisfiable"


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/ui/app.js", "javascript"),  # text/ or application/, as the system's types say
        ("/ui/views/details.js", "javascript"),
        ("/docs/assets/swagger-ui.css", "css"),
        ("/redoc/assets/redoc.standalone.js", "javascript"),
    ],
)
async def test_static_files_are_served_whole_in_ranges_and_when_unchanged(
    client: TestClient[Any, Any], path: str, kind: str
) -> None:
    whole = await client.get(path)
    assert whole.status == 200 and whole.content_type.endswith(f"/{kind}")
    content = await whole.read()
    assert content and int(whole.headers["Content-Length"]) == len(content)
    part = await client.get(path, headers={"Range": "bytes=0-9"})
    assert (part.status, await part.read()) == (206, content[:10])
    unchanged = await client.get(path, headers={"If-None-Match": whole.headers["ETag"]})
    assert unchanged.status == 304


async def test_metrics_count_a_file_answer_under_the_status_it_was_sent_with(
    client: TestClient[Any, Any],
) -> None:
    # A file answer settles on 304, 412 or 416 only as it is sent, after its handler returned.
    whole = await client.get("/ui/app.js")
    assert whole.status == 200
    size = int(whole.headers["Content-Length"])
    asks = {
        "304": {"If-None-Match": whole.headers["ETag"]},
        "412": {"If-Match": '"not-this-one"'},
        "416": {"Range": f"bytes={size + 10}-"},
    }
    for status, headers in asks.items():
        answer = await client.get("/ui/app.js", headers=headers)
        assert answer.status == int(status)
    metrics = await client.get("/metrics")
    text = await metrics.text()
    for status in [*asks, "200"]:
        labels = {"method": "GET", "route": "/ui/{name}", "status": status}
        assert sample(text, "jobd_http_requests_total", labels) == 1, status
