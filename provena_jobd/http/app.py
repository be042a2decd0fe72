"""The aiohttp application factory."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp.web_middlewares import normalize_path_middleware

from ..server import JobdServer
from .api_docs import add_docs_routes
from .auth import auth_middleware
from .cors import cors_configured, cors_middleware
from .errors import error_middleware
from .keys import ENGINE
from .limits import limits_middleware
from .openapi import openapi_json
from .ops_routes import metrics_middleware
from .route_table import add_routes
from .routes import ROUTES
from .ui_routes import add_ui_routes


def create_app(server: JobdServer) -> web.Application:
    """An application serving the Job API for `server` (which the caller starts and stops)."""
    # Metrics outermost of all, so every answer is counted with its final status; then
    # CORS, so preflights and error responses carry its headers. A trailing slash on a
    # route is a 307 to the route without it (query kept), as FastAPI answers.
    middlewares: list[Middleware] = [metrics_middleware]
    if cors_configured(server.settings.cors):
        # Only then: every request pays for each layer, and by default no origin is allowed.
        middlewares.append(cors_middleware)
    middlewares += [
        # Before anything reads the request: a URL, header or declared body over jobd's
        # limits is refused as it is, unauthenticated, unredirected (limits.py).
        limits_middleware,
        normalize_path_middleware(
            append_slash=False,
            remove_slash=True,
            merge_slashes=False,
            redirect_class=web.HTTPTemporaryRedirect,
        ),
        error_middleware,
        auth_middleware,
    ]
    app = web.Application(
        middlewares=middlewares, client_max_size=server.settings.server.max_body_bytes
    )
    app[ENGINE] = server
    add_routes(app, ROUTES)
    app.router.add_get("/openapi.json", openapi_json)
    add_docs_routes(app)
    add_ui_routes(app)
    return app
