"""Routes for operators: liveness, readiness and Prometheus metrics.

`GET /livez` answers 200 while the process can answer at all. `GET /readyz` answers 200 only
when the database is open and migrated and the pools run, and 503 while starting and while
the worker processes jobd started finish at shutdown (without them the listener closes as
shutdown begins). Both
are unauthenticated and say nothing but their state. `GET /metrics` needs the read role, like
the admin routes; `[metrics] listen` serves it without auth on its own address instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from ..config import metrics_address
from ..errors import ConfigError
from ..metrics import CONTENT_TYPE
from ..server import JobdServer
from .auth import Access
from .errors import Handler, json_response
from .keys import ENGINE
from .route_table import Route

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


# The answer a request is counted under once it is sent (see `metrics_middleware`).
_COUNT_WHEN_SENT = web.RequestKey("count_when_sent", web.StreamResponse)


def _count(request: web.Request, status: int) -> None:
    """One request more under its method, route template (not the raw path) and status."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    request.app[ENGINE].metrics.http_requests.inc(request.method, route, str(status))


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every request by method, route template and the status its answer was sent with
    (`count_when_sent` must be among the application's `on_response_prepare` signals)."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _count(request, exc.status)
        raise
    except Exception:
        _count(request, 500)
        raise
    if response.prepared:
        # A stream its handler began itself (the event stream): its status went out then.
        _count(request, response.status)
    else:
        # A file answer settles on 304, 412 or 416 only as aiohttp sends it, after this
        # returns: counted then, by `count_when_sent`, once, under the status it got.
        request[_COUNT_WHEN_SENT] = response
    return response


async def count_when_sent(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: count the answer `metrics_middleware` left to count as it is
    sent (any other, such as a stream's first try, was counted there or is not the answer)."""
    if request.get(_COUNT_WHEN_SENT) is response:
        del request[_COUNT_WHEN_SENT]
        _count(request, response.status)


@asynccontextmanager
async def metrics_listener(server: JobdServer) -> AsyncIterator[str | None]:
    """`[metrics] listen`: /metrics without auth on its own address (the URL, or None)."""
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
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError(f"cannot listen for metrics on {listen}: {exc.strerror}") from None
        bound = next(a for a in runner.addresses if isinstance(a, tuple))
        yield f"http://{host}:{bound[1]}/metrics"
    finally:
        await runner.cleanup()
