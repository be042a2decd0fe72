"""`GET /jobs/{user,admin}/events`: server-sent events of job changes, so nobody polls."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from ..identity import Right
from .errors import client_closed, error_response
from .hangups import GONE_CHECK_S, client_gone
from .keys import CALLER, ENGINE

KEEPALIVE_S = 15.0


async def _stream(request: web.Request, username: str | None) -> web.StreamResponse:
    """Subscribe first, then answer, so nothing that happens after the headers is missed."""
    server = request.app[ENGINE]
    limit = server.settings.server.max_event_streams
    if server.feed.subscribers >= limit:
        return error_response(
            503,
            f"Too many event streams are open (the limit is {limit}): try again later.",
            {"Retry-After": "5"},
        )
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    connected = False  # the headers and the first line went out to the client
    async with server.feed.subscribe(username) as subscription:
        # Only the client's socket is written to here: a ConnectionResetError is the client
        # leaving, at any moment, even before the headers go out (not a 500).
        with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
            await response.prepare(request)
            await response.write(b"retry: 2000\n: connected\n\n")
            connected = True
            quiet_s = 0.0
            while True:
                try:
                    frame = await asyncio.wait_for(subscription.queue.get(), GONE_CHECK_S)
                except TimeoutError:
                    # aiohttp does not tell a handler that its client left: look, so that a
                    # closed stream frees its place (and its buffer) within a second.
                    if client_gone(request):
                        break
                    quiet_s += GONE_CHECK_S
                    if quiet_s >= KEEPALIVE_S:
                        quiet_s = 0.0
                        await response.write(b": keepalive\n\n")
                    continue
                if frame is None:
                    break  # jobd is shutting down, or this client fell too far behind
                # Whatever else is queued goes in the same write.
                frames: list[bytes | None] = [frame]
                while not subscription.queue.empty() and frames[-1] is not None:
                    frames.append(subscription.queue.get_nowait())
                ended = frames[-1] is None
                await response.write(b"".join(f for f in frames if f is not None))
                if ended:
                    break
    if not connected and client_gone(request):
        # Gone before its stream began: a 499, as nginx counts a client that left before
        # the answer. A stream its client closes later was answered: a 200, as streams end.
        return client_closed()
    return response


async def events(request: web.Request, owner: str | None) -> web.StreamResponse:
    """`GET /jobs/{user,admin}/events`: `event: job` with the job as JSON on every change to
    the owner's jobs until the client goes away; every user's on the admin route, and on the
    user route for a caller with the admin right."""
    if owner is not None and Right.ADMIN in request[CALLER].rights:
        owner = None
    return await _stream(request, owner)
