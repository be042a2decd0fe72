"""`GET /jobs/{user,admin}/events`: server-sent events of job changes, so nobody polls."""

from __future__ import annotations

import asyncio
import contextlib

import msgspec
from aiohttp import web

from ..identity import Right
from .keys import CALLER, SERVER

KEEPALIVE_S = 15.0


async def _stream(request: web.Request, username: str | None) -> web.StreamResponse:
    """Subscribe first, then answer, so nothing that happens after the headers is missed."""
    server = request.app[SERVER]
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    async with server.feed.subscribe(username) as subscription:
        await response.prepare(request)
        await response.write(b"retry: 2000\n: connected\n\n")
        with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
            while True:
                try:
                    job = await asyncio.wait_for(subscription.queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                if job is None:
                    break  # jobd is shutting down
                data = msgspec.json.encode(job)
                await response.write(b"event: job\ndata: " + data + b"\n\n")
    return response


async def events(request: web.Request) -> web.StreamResponse:
    """`GET /jobs/user/events`: `event: job` with the job as JSON on every change to the
    caller's jobs (every user's for an admin) until the client goes away."""
    caller = request[CALLER]
    return await _stream(request, None if Right.ADMIN in caller.rights else caller.username)


async def admin_events(request: web.Request) -> web.StreamResponse:
    """`GET /jobs/admin/events`: every user's job changes, for callers who may read them all."""
    return await _stream(request, None)
