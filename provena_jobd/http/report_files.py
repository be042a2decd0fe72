"""`GET /reports/{name}`: report downloads, through signed links that expire."""

from __future__ import annotations

import re

from aiohttp import web

from ..errors import LinkExpired
from ..queue.files import files_for
from ..workers.reports import SIGNING_SECRET, link_is_valid
from .keys import ENGINE

_NAME = re.compile(r"^[0-9a-f]{32}\.docx$")
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


async def report_file(request: web.Request) -> web.StreamResponse:
    """Serve a report if its link is signed by this jobd and not expired."""
    server = request.app[ENGINE]
    name = request.match_info["name"]
    try:
        expires = int(request.query.get("expires", ""))
    except ValueError:
        raise LinkExpired() from None
    signature = request.query.get("signature", "")
    key = await server.store.secret(SIGNING_SECRET)
    now = server.clock.now()
    if not _NAME.match(name) or not link_is_valid(key, name, expires, signature, now):
        raise LinkExpired()
    data = await files_for(server.store, server.settings.reports.folder).get(name)
    if data is None:
        raise web.HTTPNotFound()
    headers = {"Content-Disposition": 'attachment; filename="generate_report.docx"'}
    return web.Response(body=data, content_type=DOCX, headers=headers)
