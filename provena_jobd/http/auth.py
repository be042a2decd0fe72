"""Authentication and role checks per route, answering as the reference does (always 401)."""

from __future__ import annotations

import enum

from aiohttp import web

from ..errors import Unauthenticated
from ..identity import MISSING_ROLE, Identity, Right
from .errors import CHALLENGE, Handler, error_response
from .keys import CALLER, ENGINE


class Access(enum.Enum):
    """What a route demands of its caller (the reference's "all-of" role dependencies)."""

    PUBLIC = "public"  # no identity needed
    USER = "user"  # any valid identity, no role
    READ = "read"
    READ_WRITE = "read_write"
    ADMIN = "admin"
    WORKER = "worker"  # the worker protocol

    @property
    def rights(self) -> frozenset[Right]:
        """The rights a caller must hold, all of them."""
        return _RIGHTS[self]


_RIGHTS = {
    Access.PUBLIC: frozenset[Right](),
    Access.USER: frozenset[Right](),
    Access.READ: frozenset({Right.READ}),
    Access.READ_WRITE: frozenset({Right.READ, Right.WRITE}),
    Access.ADMIN: frozenset({Right.READ, Right.WRITE, Right.ADMIN}),
    Access.WORKER: frozenset({Right.WORKER}),
}

ACCESS = web.AppKey("access", dict[str, Access])


def _access_for(request: web.Request) -> Access:
    route = request.match_info.route
    if route.resource is None:  # no such route: 404/405 answer without asking who calls
        return Access.PUBLIC
    return request.app[ACCESS].get(route.resource.canonical, Access.PUBLIC)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate the caller and check the route's roles before the handler runs."""
    access = _access_for(request)
    if access is Access.PUBLIC:
        return await handler(request)
    authenticator = request.app[ENGINE].authenticator
    try:
        identity: Identity = await authenticator.authenticate(request.headers.get("Authorization"))
    except Unauthenticated as exc:
        return error_response(401, str(exc), CHALLENGE)
    if not access.rights <= identity.rights:
        return error_response(401, MISSING_ROLE, CHALLENGE)
    request[CALLER] = identity
    return await handler(request)
