"""`/docs`: interactive API documentation (Swagger UI) of jobd's own `/openapi.json`.

The Swagger UI assets come from the `swagger-ui-bundle` wheel and are served by jobd itself,
so the page works without internet access (FastAPI's default loads them from a CDN).
"""

from __future__ import annotations

from aiohttp import web
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

ASSETS = "/docs/assets"

# The page FastAPI serves at /docs, pointing at jobd's copies of the assets.
_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>provena-jobd Job API - Swagger UI</title>
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
<link rel="icon" type="image/png" href="{ASSETS}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
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


async def swagger_ui(request: web.Request) -> web.Response:
    """`GET /docs`: the Swagger UI page."""
    return web.Response(text=_PAGE, content_type="text/html")


def add_docs_routes(app: web.Application) -> None:
    """Serve `/docs` and the Swagger UI assets it loads."""
    app.router.add_get("/docs", swagger_ui)
    app.router.add_static(ASSETS, swagger_ui_path)
