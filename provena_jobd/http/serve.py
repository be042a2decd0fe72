"""Run jobd's HTTP server and engine together, as a context manager (CLI, tests, fixtures)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from ..clock import Clock
from ..config import Settings
from ..listen import url_of
from ..server import JobdServer
from ..workers.handlers import Handler
from .app import create_app
from .limits import PARSER_LIMITS
from .ops_routes import metrics_listener


@dataclass(frozen=True)
class Running:
    """A started jobd: its engine and the URL it answers on."""

    server: JobdServer
    url: str


@asynccontextmanager
async def running(
    settings: Settings,
    clock: Clock | None = None,
    handlers: Mapping[str, Handler] | None = None,
    sock: socket.socket | None = None,
    metrics_sock: socket.socket | None = None,
) -> AsyncIterator[Running]:
    """Start the engine and the HTTP listener; on exit drain the pools and close the store.

    `sock` is a socket already bound (`jobd serve` binds before opening the database);
    without it jobd binds `settings.server`'s host and port. `metrics_sock`, the same for
    `[metrics] listen`.
    """
    server = JobdServer(settings, clock=clock, handlers=handlers)
    await server.start()
    runner = web.AppRunner(
        create_app(server),
        access_log=None,
        handle_signals=False,
        shutdown_timeout=5.0,
        keepalive_timeout=settings.server.idle_timeout_s,
        # aiohttp's parser would answer a long URL or header with its own plain-text 400;
        # raised, jobd's middleware answers first, in JSON (limits.py).
        **PARSER_LIMITS,
    )
    try:
        await runner.setup()
        site: web.BaseSite = (
            web.SockSite(runner, sock, backlog=1024)
            if sock is not None
            else web.TCPSite(runner, settings.server.host, settings.server.port, backlog=1024)
        )
        await site.start()
        url = _url_of(runner, settings.server.host)
        server.set_public_url(url)
        async with metrics_listener(server, metrics_sock) as metrics_url:
            server.metrics_url = metrics_url
            yield Running(server, url)
    finally:
        # Release long polls and event streams, stop taking requests (in-flight ones
        # complete), then let the pools drain, so nothing is launched into a closing store.
        await server.feed.close()
        # Worker processes finish their jobs over HTTP, so they stop before the listener.
        await server.stop_outside_workers()
        await runner.cleanup()
        await server.stop()


def _url_of(runner: web.AppRunner, host: str) -> str:
    """The URL actually bound (port 0 becomes the port the OS picked)."""
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            port = address[1]
            break
    else:  # pragma: no cover - TCPSite always yields an address
        raise RuntimeError("the HTTP server did not bind")
    return url_of(host, port)
