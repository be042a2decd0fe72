"""Clients that leave while a handler waits for them (long polls, event streams).

aiohttp neither cancels a handler whose client left nor tells it: a handler that waits looks
at its connection between its waits (`client_gone`), or waits for whichever comes first, what
it waits for or its client leaving (`unless_client_leaves`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from aiohttp import web

# How often (wall clock) a waiting handler looks whether its client has left: the client's
# socket, not job time, so not the injected clock.
GONE_CHECK_S = 1.0


def client_gone(request: web.Request) -> bool:
    """Has the client of `request` closed its connection?"""
    transport = request.transport
    return transport is None or transport.is_closing()


async def _client_left(request: web.Request) -> None:
    """Return once the client of `request` has closed its connection."""
    # Looked at, not told: aiohttp has no event for a client that left.
    while True:
        await asyncio.sleep(GONE_CHECK_S)
        if client_gone(request):
            return


async def unless_client_leaves(request: web.Request, waiting: Awaitable[None]) -> None:
    """Await `waiting`, but stop it (cancelled) within `GONE_CHECK_S` of the client leaving:
    a long poll nobody waits for any more holds nothing until its `wait_s` runs out."""
    wait = asyncio.ensure_future(waiting)
    left = asyncio.ensure_future(_client_left(request))
    try:
        await asyncio.wait({wait, left}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (wait, left):
            task.cancel()
        await asyncio.gather(wait, left, return_exceptions=True)
    if not wait.cancelled():
        wait.result()  # what went wrong while waiting (a failed read) is the handler's error
