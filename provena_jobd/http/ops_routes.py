"""Routes for operators: liveness, readiness and Prometheus metrics.

`GET /livez` answers 200 while the process can answer at all. `GET /readyz` answers 200 only
when the database is open and migrated and the pools run, and 503 while starting and while
the worker processes jobd started finish at shutdown (without them the listener closes as
shutdown begins). Both
are unauthenticated and say nothing but their state. `GET /metrics` needs the read role, like
the admin routes; `[metrics] listen` serves it without auth on its own address instead.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from ..config import metrics_address
from ..errors import ConfigError
from ..listen import url_of
from ..metrics import CONTENT_TYPE
from ..server import JobdServer
from .auth import Access
from .errors import Handler, json_response
from .keys import ENGINE
from .route_table import Route
from .static_files import StaticFile

NOT_STARTED = "jobd is starting or shutting down"


async def livez(request: web.Request) -> web.Response:
    """`GET /livez`: the process is alive and its event loop answers."""
    return json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    """`GET /readyz`: 200 when jobd can take work, else 503 with the reason."""
    server = request.app[ENGINE]
    if not server.ready:
        return json_response({"status": "unavailable", "detail": NOT_STARTED}, 503)
    try:
        await server.store.get("readyz")  # the database answers a read
    except Exception as exc:  # whatever the reason, the answer is "not ready", never a 500
        return json_response({"status": "unavailable", "detail": f"database: {exc}"}, 503)
    return json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    """`GET /metrics`: every metric in the Prometheus text format."""
    body = await request.app[ENGINE].metrics_text()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


OPS_ROUTES = [
    Route("GET", "/livez", livez, Access.PUBLIC, "Liveness", listed=False),
    Route("GET", "/readyz", readyz, Access.PUBLIC, "Readiness", listed=False),
    Route("GET", "/metrics", metrics, Access.READ, "Prometheus metrics", listed=False),
]


def _count(request: web.Request, status: int) -> None:
    """One request more under its method, route template (not the raw path) and status."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    request.app[ENGINE].metrics.http_requests.inc(request.method, route, str(status))


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every request by method, route template and the status its answer was sent with."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _count(request, exc.status)
        raise
    except Exception:
        _count(request, 500)
        raise
    if isinstance(response, StaticFile) and not response.prepared:
        # A file answer settles on 304, 412 or 416 only as aiohttp sends it, after this
        # returns: it says its status then (static_files.py). Only files: no other answer
        # pays for being counted late.
        response.sent = functools.partial(_count, request)
    else:
        _count(request, response.status)
    return response


@asynccontextmanager
async def metrics_listener(
    server: JobdServer, sock: socket.socket | None = None
) -> AsyncIterator[str | None]:
    """`[metrics] listen`: /metrics without auth on its own address (the URL, or None);
    on `sock` if it is already bound there (`jobd serve` binds before opening the database)."""
    listen = server.settings.metrics.listen
    if listen is None:
        yield None
        return
    host, port = metrics_address(listen)
    app = web.Application()
    app[ENGINE] = server
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site: web.BaseSite = (
            web.SockSite(runner, sock) if sock is not None else web.TCPSite(runner, host, port)
        )
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError(f"cannot listen for metrics on {listen}: {exc.strerror}") from None
        bound = next(a for a in runner.addresses if isinstance(a, tuple))
        yield f"{url_of(host, bound[1])}/metrics"
    finally:
        await runner.cleanup()
