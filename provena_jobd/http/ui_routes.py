"""The jobs panel: static HTML, CSS and JavaScript modules shipped inside the package."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from .static_files import StaticFile, add_static_folder

UI_FOLDER = Path(__file__).with_name("ui")


async def ui_index(request: web.Request) -> web.FileResponse:
    """`GET /ui/`: the single page; everything else is a static module next to it."""
    return StaticFile(UI_FOLDER / "index.html", headers={"Cache-Control": "no-cache"})


async def ui_redirect(request: web.Request) -> web.Response:
    """`GET /ui`: to `/ui/`, so relative module paths resolve."""
    raise web.HTTPFound("/ui/")


def add_ui_routes(app: web.Application) -> None:
    """Serve the panel at /ui/."""
    app.router.add_get("/ui", ui_redirect)
    app.router.add_get("/ui/", ui_index)
    add_static_folder(app, "/ui", UI_FOLDER)
