"""CORS for the configured browser origins only (none by default)."""

from __future__ import annotations

from aiohttp import web

from .errors import Handler
from .keys import SERVER

_ALLOW_HEADERS = "Authorization, Content-Type"
_ALLOW_METHODS = "GET, POST, OPTIONS"


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer preflights and mark responses for allowed origins; others get no CORS headers."""
    origin = request.headers.get("Origin")
    allowed = request.app[SERVER].settings.cors.allowed_origins
    if origin is None or (origin not in allowed and "*" not in allowed):
        return await handler(request)
    headers = {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        headers |= {
            "Access-Control-Allow-Methods": _ALLOW_METHODS,
            "Access-Control-Allow-Headers": _ALLOW_HEADERS,
            "Access-Control-Max-Age": "600",
        }
        return web.Response(status=204, headers=headers)
    response = await handler(request)
    response.headers.update(headers)
    return response
