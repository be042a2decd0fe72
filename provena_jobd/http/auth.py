"""Who a request acts as. Mode `none`: the configured local user, holding every role."""

from __future__ import annotations

from aiohttp import web

from .errors import Handler
from .keys import CALLER, SERVER


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Attach the caller's username; the Authorization header is ignored in `none` mode."""
    request[CALLER] = request.app[SERVER].settings.auth.local_user
    return await handler(request)
