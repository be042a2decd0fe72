"""Folders of static files (the panel's modules, the API docs' assets), whose errors are
`{"detail": ...}` like every other answer of jobd.

aiohttp's own static routes answer a missing file with an empty `application/octet-stream`
404, decided while the response is sent, where no middleware sees it. Here a name that is
not a regular file inside the folder is a 404 before any file is opened, and the errors a
file answer can still settle on as it is sent (416 for a range past its end, 412 for a failed
`If-Match`, 403 for a file jobd may not read) carry the same JSON body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import msgspec
from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.web_request import BaseRequest


class _ErrorsAsJson(web.StreamResponse):
    """Placed between `FileResponse` and `StreamResponse` (see `StaticFile`): FileResponse
    answers an error it finds while preparing by calling `super().prepare()` with the error's
    status set, which lands here, where the body is written as JSON.

    Every file answer reaches this once with its final status (200, 206, 304, 412, 416...),
    so `sent`, if set, is told that status here: `/metrics` counts it then, not when the
    handler returned a still undecided 200.
    """

    sent: Callable[[int], None] | None = None

    async def prepare(self, request: BaseRequest) -> AbstractStreamWriter | None:
        """Send the headers; with an error status, a `{"detail": ...}` body too."""
        if self.sent is not None:
            sent, self.sent = self.sent, None
            sent(self.status)
        if self.status < 400:
            return await super().prepare(request)
        body = msgspec.json.encode({"detail": self.reason})
        self.content_type = "application/json"
        self.content_length = len(body)
        writer = await super().prepare(request)
        if request.method != "HEAD":
            await self.write(body)
        return writer


class StaticFile(web.FileResponse, _ErrorsAsJson):
    """A file answer (ranges, conditional requests, precompressed variants as aiohttp's)
    whose errors are JSON."""


def _regular_file(folder: Path, name: str) -> Path | None:
    """`name` as a regular file inside `folder` (no way out of it, symlinks resolved)."""
    try:
        path = (folder / name).resolve()
        return path if path.is_relative_to(folder) and path.is_file() else None
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte...
        return None


def add_static_folder(app: web.Application, prefix: str, folder: Path) -> None:
    """Serve the files under `folder` at `prefix/<name>` (GET and HEAD)."""
    root = folder.resolve()

    async def static_file(request: web.Request) -> web.StreamResponse:
        # Off the event loop: the file system may be slow (aiohttp's own static routes too).
        path = await asyncio.to_thread(_regular_file, root, request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound()  # the error middleware answers it as any unknown path
        return StaticFile(path)

    app.router.add_get(f"{prefix.rstrip('/')}/{{name:.+}}", static_file)
