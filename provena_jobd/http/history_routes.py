"""`GET /jobs/{user,admin}/history`: a job's attempts, for the details page's timeline."""

from __future__ import annotations

from aiohttp import web

from ..models import HistoryResponse
from .auth import Access
from .errors import json_response
from .keys import ENGINE
from .route_table import twins
from .validation import query_param


async def history(request: web.Request, owner: str | None) -> web.Response:
    """A job's attempts, oldest first; the same access rules as its fetch."""
    session_id = query_param(request, "session_id")
    server = request.app[ENGINE]
    await server.service.fetch(session_id, caller=owner)  # 400 unknown, 401 another user's
    attempts = await server.store.attempts(session_id)
    return json_response(HistoryResponse(session_id=session_id, attempts=attempts))


HISTORY_ROUTES = twins(
    "GET",
    "history",
    history,
    Access.READ,
    ("The attempts of one of the caller's jobs", "The attempts of any job"),
    query=("session_id",),
    response=HistoryResponse,
)
