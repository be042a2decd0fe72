"""A client that hangs up is not a server error: counted as 499 (nginx's "client closed
request") or with the answer it left behind, logged without a traceback, and nothing is done.
A ConnectionResetError that is not the client's stays a 500."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from provena_jobd.clock import FakeClock
from provena_jobd.http import event_stream, hangups
from provena_jobd.http.serve import Running, running
from provena_jobd.metrics import sample
from tests.helpers import eventually, settings_for
from tests.http.hangup_helpers import hang_up, no_500, open_raw, requests_counted

WAKE = {"job_type": "EMAIL", "job_sub_type": "EMAIL_WAKE_UP", "job_payload": {}}
HUNG_UP = "client closed the connection while sending its request"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def jobd(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Running]:
    # Workers never become ready, so a launched job would stay PENDING and show in the list.
    settings = settings_for(tmp_path, server={"port": 0}, pool={"cold_start_s": 1e9})
    async with running(settings, clock=clock) as served:
        yield served


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="provena_jobd")
    return caplog


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_a_client_that_hangs_up_mid_body_is_a_499_and_launches_nothing(
    jobd: Running, logs: pytest.LogCaptureFixture, reset: bool, framing: str
) -> None:
    start = b'{"job_type": "EMAIL", "job_sub_type": "EMAIL_WAKE_UP", "job_payload": {"x": "'
    sent = start + b"a" * (1000 - len(start))
    if framing == "chunked":
        head = b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % 60_000
    else:
        head = b"Content-Length: 60000\r\n\r\n"
    reader, writer = await open_raw(jobd.url)
    writer.write(
        b"POST /jobs/admin/launch HTTP/1.1\r\nHost: jobd\r\nContent-Type: application/json\r\n"
    )
    if reset:
        # A reset can drop what jobd has not read yet: wait until it has the headers (as
        # curl does for a large body) so that it is reading the body when the reset comes.
        writer.write(b"Expect: 100-continue\r\n" + head)
        assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2) == (
            b"HTTP/1.1 100 Continue\r\n\r\n"
        )
        writer.write(sent)
    else:
        writer.write(head + sent)
    await writer.drain()
    hang_up(writer, reset)

    text = await eventually(
        lambda: requests_counted(jobd.url, "/jobs/admin/launch", "499"), what="the 499"
    )
    no_500(text, logs)
    hung_up = [r for r in logs.records if r.getMessage().startswith(HUNG_UP)]
    assert len(hung_up) == 1 and hung_up[0].levelno == logging.INFO
    assert hung_up[0].getMessage().endswith("(POST /jobs/admin/launch)")  # says which route
    assert sample(text, "jobd_jobs_launched_total") == 0
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{jobd.url}/jobs/admin/list", json={}) as listed,
    ):
        assert (await listed.json())["jobs"] == []


async def test_a_connection_reset_that_is_not_the_clients_is_still_a_500(
    jobd: Running, logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def database_socket_reset(*args: Any, **kwargs: Any) -> None:
        raise ConnectionResetError(104, "Connection reset by peer")  # as asyncpg's socket would

    monkeypatch.setattr(jobd.server.service, "launch", database_socket_reset)
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{jobd.url}/jobs/admin/launch", json=WAKE) as response,
    ):
        assert response.status == 500
        assert "Connection reset by peer" in (await response.json())["detail"]
    assert await requests_counted(jobd.url, "/jobs/admin/launch", "500")
    assert [r for r in logs.records if getattr(r, "action", None) == "http_500"]
    assert not [r for r in logs.records if r.getMessage().startswith(HUNG_UP)]


async def test_a_client_that_leaves_an_event_stream_is_not_a_500(
    jobd: Running, logs: pytest.LogCaptureFixture
) -> None:
    # Gone at once (most often before the headers go out), and gone after reading some.
    for _ in range(5):
        _, writer = await open_raw(jobd.url)
        writer.write(b"GET /jobs/admin/events HTTP/1.1\r\nHost: jobd\r\n\r\n")
        await writer.drain()
        # A FIN, not a reset: a reset may drop the request before jobd reads it.
        hang_up(writer, reset=False)
    reader, writer = await open_raw(jobd.url)
    writer.write(b"GET /jobs/admin/events HTTP/1.1\r\nHost: jobd\r\n\r\n")
    await asyncio.wait_for(reader.readuntil(b": connected\n\n"), 2)
    hang_up(writer, reset=False)

    async def all_counted() -> str | None:
        text = await requests_counted(jobd.url, "/jobs/admin/events", "500")
        if text:
            return text
        async with aiohttp.ClientSession() as http, http.get(f"{jobd.url}/metrics") as response:
            text = await response.text()
        # 499 for a client gone before its stream began, 200 once it had begun.
        began, gone = (counted(text, "/jobs/admin/events", s) for s in ("200", "499"))
        return text if began >= 1 and began + gone == 6 else None

    no_500(await eventually(all_counted, what="six event streams counted"), logs)
    assert jobd.server.feed.subscribers == 0  # every place freed


def counted(text: str, route: str, status: str) -> float:
    """The requests to `route` /metrics counted under `status`."""
    return sample(text, "jobd_http_requests_total", {"route": route, "status": status})


async def leave(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The client closes its side (a FIN) and returns once jobd has closed the connection
    too, so jobd knows it is gone. Nothing was answered on it."""
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()


async def test_an_event_stream_whose_client_left_before_it_began_is_a_499(
    jobd: Running, logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = event_stream._stream

    async def once_its_client_left(request: web.Request, owner: str | None) -> Any:
        """The stream begins only once its client has gone: deterministically too late."""

        async def gone() -> bool:
            return hangups.client_gone(request)

        await eventually(gone, what="the client to leave")
        return await stream(request, owner)

    monkeypatch.setattr(event_stream, "_stream", once_its_client_left)
    reader, writer = await open_raw(jobd.url)
    writer.write(b"GET /jobs/admin/events HTTP/1.1\r\nHost: jobd\r\n\r\n")
    await writer.drain()
    await leave(reader, writer)
    text = await eventually(
        lambda: requests_counted(jobd.url, "/jobs/admin/events", "499"), what="the 499"
    )
    assert counted(text, "/jobs/admin/events", "200") == 0
    no_500(text, logs)
    assert jobd.server.feed.subscribers == 0


async def test_a_client_that_leaves_a_long_poll_is_a_499(
    jobd: Running, clock: FakeClock, logs: pytest.LogCaptureFixture
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{jobd.url}/jobs/admin/launch", json=WAKE) as launched,
    ):
        session_id = (await launched.json())["session_id"]
    reader, writer = await open_raw(jobd.url)
    writer.write(
        f"GET /jobs/admin/fetch?session_id={session_id}&wait_s=20 HTTP/1.1\r\n"
        "Host: jobd\r\n\r\n".encode()
    )
    await writer.drain()

    async def waiting() -> bool:
        return jobd.server.feed.waiters == 1

    await eventually(waiting, what="the fetch to wait for the job")
    await leave(reader, writer)

    async def poll_over() -> str | None:
        await clock.advance(20)  # the poll ends (if its client leaving has not ended it)
        return await requests_counted(jobd.url, "/jobs/admin/fetch", "499")

    text = await eventually(poll_over, what="the fetch counted")
    assert counted(text, "/jobs/admin/fetch", "200") == 0  # nobody was answered
    no_500(text, logs)


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
async def test_a_long_poll_stops_waiting_once_its_client_has_left(
    jobd: Running, logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, reset: bool
) -> None:
    monkeypatch.setattr(hangups, "GONE_CHECK_S", 0.01)  # jobd looks every second
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{jobd.url}/jobs/admin/launch", json=WAKE) as launched,
    ):
        session_id = (await launched.json())["session_id"]  # never runs: no worker is ready
    feed = jobd.server.feed
    reader, writer = await open_raw(jobd.url)
    writer.write(
        f"GET /jobs/admin/fetch?session_id={session_id}&wait_s=60 HTTP/1.1\r\n"
        "Host: jobd\r\n\r\n".encode()
    )
    await writer.drain()

    async def waiting() -> bool:
        return feed.waiters == 1

    await eventually(waiting, what="the fetch to wait for the job")
    hang_up(writer, reset)
    assert await asyncio.wait_for(reader.read(), 2) == b""  # nothing was answered

    # The fake clock stands still: only its client leaving can end this poll.
    async def gone() -> bool:
        return feed.waiters == 0

    await eventually(gone, within_s=2, what="the poll to stop waiting")
    text = await eventually(
        lambda: requests_counted(jobd.url, "/jobs/admin/fetch", "499"), what="the fetch counted"
    )
    no_500(text, logs)
