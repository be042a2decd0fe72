"""Slow and idle clients cannot hold jobd's memory or connections (issue 18, item 10)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from provena_jobd.config import Settings
from provena_jobd.events import Subscription
from provena_jobd.http.serve import running
from tests.helpers import eventually, settings_for
from tests.http.hangup_helpers import open_raw

WAKE = {"job_type": "EMAIL", "job_sub_type": "EMAIL_WAKE_UP", "job_payload": {}}


def limited(tmp_path: Path, **server: Any) -> Settings:
    return settings_for(tmp_path, server={"port": 0, **server}, pool={"cold_start_s": 1e9})


@pytest.fixture
async def url(tmp_path: Path) -> AsyncIterator[str]:
    settings = limited(tmp_path, idle_timeout_s=0.2, max_event_streams=2)
    async with running(settings) as jobd:
        yield jobd.url


async def test_a_connection_that_sends_nothing_is_closed(url: str) -> None:
    reader, writer = await open_raw(url)
    assert await asyncio.wait_for(reader.read(), 2) == b""  # closed by jobd
    writer.close()


async def test_a_slowloris_that_never_finishes_its_headers_is_closed(url: str) -> None:
    reader, writer = await open_raw(url)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
    try:
        for _ in range(4):
            await asyncio.sleep(0.1)
            writer.write(b"X-a: b\r\n")  # a header now and then, never the blank line
            await writer.drain()
        closed = await asyncio.wait_for(reader.read(), 2) == b""
    except ConnectionError:
        closed = True  # a write found the connection closed by jobd
    writer.close()
    assert closed


async def test_event_streams_over_the_cap_get_a_clear_503(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        first = await session.get(f"{url}/jobs/admin/events")
        second = await session.get(f"{url}/jobs/admin/events")
        third = await session.get(f"{url}/jobs/admin/events")
        assert (first.status, second.status, third.status) == (200, 200, 503)
        assert (await third.json())["detail"] == (
            "Too many event streams are open (the limit is 2): try again later."
        )
        first.close()

        async def a_place_is_free() -> aiohttp.ClientResponse | None:
            response = await session.get(f"{url}/jobs/admin/events")
            if response.status == 200:
                return response
            response.release()
            await asyncio.sleep(0.1)
            return None

        again = await eventually(a_place_is_free, within_s=3, what="the closed stream's place")
        second.close()
        again.close()


def test_a_subscriber_that_falls_behind_is_cut_off_not_buffered_for_ever() -> None:
    subscription = Subscription(None, buffer=3)
    for number in range(5):
        subscription.offer(object(), b"frame %d" % number)  # type: ignore[arg-type]
    assert subscription.behind
    queued = [subscription.queue.get_nowait() for _ in range(subscription.queue.qsize())]
    assert queued == [b"frame 0", b"frame 1", b"frame 2", None]  # then the end of the stream
