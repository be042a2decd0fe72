"""CORS for the configured browser origins only (none by default).

Origins are allowed by name (`allowed_origins`) or by a regular expression matching the whole
origin (`allowed_origin_regex`), as the reference's Starlette CORSMiddleware does. A preflight
from any other origin gets no CORS headers, so the browser refuses the call.
"""

from __future__ import annotations

import re

from aiohttp import web

from ..config import CorsSettings
from .errors import Handler
from .keys import ENGINE

_ALLOW_METHODS = "GET, POST, OPTIONS"
_BASE_HEADERS = "Authorization, Content-Type"


def cors_configured(cors: CorsSettings) -> bool:
    """Does any origin get CORS headers? Not by default: then jobd leaves the middleware out."""
    return bool(cors.allowed_origins) or cors.allowed_origin_regex is not None


def origin_allowed(origin: str, cors: CorsSettings) -> bool:
    """True for an origin listed in `allowed_origins` or matching `allowed_origin_regex`."""
    if origin in cors.allowed_origins or "*" in cors.allowed_origins:
        return True
    pattern = cors.allowed_origin_regex
    return pattern is not None and re.fullmatch(pattern, origin) is not None


def allowed_headers(request: web.Request, cors: CorsSettings) -> str:
    """The preflight's Access-Control-Allow-Headers: with "*", the headers the browser asked
    for (as the reference's `allow_headers=["*"]`); otherwise the configured ones."""
    if "*" in cors.allowed_headers:
        return request.headers.get("Access-Control-Request-Headers") or _BASE_HEADERS
    return ", ".join(cors.allowed_headers) or _BASE_HEADERS


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer preflights and mark responses for allowed origins; others get no CORS headers."""
    origin = request.headers.get("Origin")
    cors = request.app[ENGINE].settings.cors
    if origin is None or not origin_allowed(origin, cors):
        return await handler(request)
    headers = {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        headers |= {
            "Access-Control-Allow-Methods": _ALLOW_METHODS,
            "Access-Control-Allow-Headers": allowed_headers(request, cors),
            "Access-Control-Max-Age": "600",
        }
        return web.Response(status=204, headers=headers)
    response = await handler(request)
    response.headers.update(headers)
    return response
