"""One declaration per route: it drives routing, the access check, `/openapi.json` and `/docs`.

A `Route` names its method, path, handler, the access it demands, its request and response
models and a summary. The Job API's user/admin twins are declared once with `twins`, from
one handler that takes the scope: the caller's username on `/jobs/user/...` (only their own
jobs), None on `/jobs/admin/...` (anyone's).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace

from aiohttp import web

from .auth import ACCESS, Access
from .keys import CALLER

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# A twin's handler: the request and the owner the route is scoped to (None: anyone's jobs).
ScopedHandler = Callable[[web.Request, str | None], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    """One HTTP route and everything said about it."""

    method: str
    path: str
    handler: Handler
    access: Access
    summary: str
    # For /openapi.json: the JSON body it takes, its required query parameters, and what
    # it answers with (a wire model, or a media type for a body that is not JSON).
    body: type | None = None
    query: tuple[str, ...] = ()
    response: type | str | None = None
    waits: bool = False  # takes `wait_s` (a long-polling fetch)
    idempotent: bool = False  # takes the `Idempotency-Key` header (a launch)
    listed: bool = True  # in /openapi.json


def twins(
    method: str,
    name: str,
    handler: ScopedHandler,
    admin_access: Access,
    summary: tuple[str, str],
    *,
    body: tuple[type | None, type | None] = (None, None),
    query: tuple[str, ...] = (),
    response: type | str | None = None,
    waits: bool = False,
) -> tuple[Route, Route]:
    """`/jobs/user/<name>` (the caller's own jobs) and `/jobs/admin/<name>` (anyone's).

    `summary` and `body` are (user's, admin's).
    """

    async def mine(request: web.Request) -> web.StreamResponse:
        return await handler(request, request[CALLER].username)

    async def anyones(request: web.Request) -> web.StreamResponse:
        return await handler(request, None)

    user = Route(
        method,
        f"/jobs/user/{name}",
        mine,
        Access.USER,
        summary[0],
        body=body[0],
        query=query,
        response=response,
        waits=waits,
    )
    admin = replace(
        user,
        path=f"/jobs/admin/{name}",
        handler=anyones,
        access=admin_access,
        summary=summary[1],
        body=body[1],
    )
    return user, admin


def add_routes(app: web.Application, routes: Iterable[Route]) -> None:
    """Register every route and the access it demands."""
    access: dict[str, Access] = app.get(ACCESS, {})
    for route in routes:
        app.router.add_route(route.method, route.path, route.handler)
        access[route.path] = route.access
    app[ACCESS] = access
