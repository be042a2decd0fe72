"""Shared helpers of the suites about clients that hang up: raw connections jobd serves as
it serves any, closed or reset on cue, and the HTTP request counts of /metrics."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct

import aiohttp
import pytest

from provena_jobd.metrics import sample


async def open_raw(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A bare TCP connection to jobd, to send exactly the bytes a test wants."""
    host, port = url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


def hang_up(writer: asyncio.StreamWriter, reset: bool) -> None:
    """Close the client's socket: a FIN, or (`reset`) a TCP RST as a crashed client sends."""
    if reset:
        linger_at_once = struct.pack("ii", 1, 0)
        writer.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, linger_at_once
        )
    writer.close()


async def requests_counted(url: str, route: str, status: str, count: int = 1) -> str | None:
    """The exposition once `count` requests to `route` have been counted under `status`."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        text = await response.text()
    labels = {"route": route, "status": status}
    return text if sample(text, "jobd_http_requests_total", labels) >= count else None


def no_500(text: str, logs: pytest.LogCaptureFixture) -> None:
    """Nothing counted as a 500, nothing logged as an error or with a traceback."""
    assert 'status="500"' not in text
    assert not [r for r in logs.records if getattr(r, "action", None) == "http_500"]
    assert not [r for r in logs.records if r.exc_info or r.levelno >= logging.ERROR]
