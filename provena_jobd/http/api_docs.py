"""`/docs` and `/redoc`: interactive API documentation of jobd's own `/openapi.json`.

Swagger UI (5.x, which reads OpenAPI 3.1) and ReDoc come from the `openapi-ui-bundles`
package and are served by jobd itself, so the pages work without internet access (FastAPI's
defaults load them from a CDN).
"""

from __future__ import annotations

from aiohttp import web
from openapi_ui_bundles import redoc, swagger_ui

from .static_files import add_static_folder

SWAGGER_ASSETS = "/docs/assets"
REDOC_ASSETS = "/redoc/assets"
_TITLE = "provena-jobd Job API"
# Nothing on these pages may leave jobd: ReDoc's footer would load its logo from a CDN, which
# this blocks (it then hides the logo). Inline scripts and styles are the pages' own.
_POLICY = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "worker-src 'self' blob:; connect-src 'self'"
}

# The pages FastAPI serves at /docs and /redoc, pointing at jobd's copies of the assets.
_SWAGGER_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{_TITLE} - Swagger UI</title>
<link rel="stylesheet" href="{SWAGGER_ASSETS}/swagger-ui.css">
<link rel="icon" type="image/png" href="{SWAGGER_ASSETS}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{SWAGGER_ASSETS}/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
}});
</script>
</body>
</html>
"""

_REDOC_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_TITLE} - ReDoc</title>
<style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<redoc spec-url="/openapi.json"></redoc>
<script src="{REDOC_ASSETS}/redoc.standalone.js"></script>
</body>
</html>
"""


async def swagger_page(request: web.Request) -> web.Response:
    """`GET /docs`: Swagger UI, which can also call the API."""
    return web.Response(text=_SWAGGER_PAGE, content_type="text/html", headers=_POLICY)


async def redoc_page(request: web.Request) -> web.Response:
    """`GET /redoc`: ReDoc, a read-only reference."""
    return web.Response(text=_REDOC_PAGE, content_type="text/html", headers=_POLICY)


def add_docs_routes(app: web.Application) -> None:
    """Serve `/docs`, `/redoc` and the assets they load."""
    app.router.add_get("/docs", swagger_page)
    app.router.add_get("/redoc", redoc_page)
    add_static_folder(app, SWAGGER_ASSETS, swagger_ui.static_path)
    add_static_folder(app, REDOC_ASSETS, redoc.static_path)
