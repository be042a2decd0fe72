"""Routes that act on jobs beyond the reference: retry, cancel, batch summary, workflow.

Each takes the owner its route is scoped to: the caller on the user twin (only their own
jobs), None on the admin twin (anyone's); `routes.ROUTES` declares both twins at once.
"""

from __future__ import annotations

from aiohttp import web

from ..models import BatchSummaryRequest, JobResponse, RetryResponse
from .errors import json_response
from .keys import CALLER, ENGINE
from .validation import decode_body, query_param


async def retry(request: web.Request, owner: str | None) -> web.Response:
    """`POST /jobs/{user,admin}/retry?session_id=`: relaunch a FAILED job."""
    session_id = query_param(request, "session_id")
    launched = await request.app[ENGINE].service.retry(session_id, owner)
    return json_response(RetryResponse(launched.session_id))


async def cancel(request: web.Request, owner: str | None) -> web.Response:
    """`POST /jobs/{user,admin}/cancel?session_id=`: stop a job (workers/cancellations.py)."""
    session_id = query_param(request, "session_id")
    service = request.app[ENGINE].service
    job, _ = await service.cancel(session_id, owner, by=request[CALLER].username)
    return json_response(JobResponse(job))


async def batch_summary(request: web.Request, owner: str | None) -> web.Response:
    """`POST /jobs/{user,admin}/batch_summary`: counts by status for a batch."""
    body = await decode_body(request, BatchSummaryRequest)
    return json_response(await request.app[ENGINE].service.batch_summary(body.batch_id, owner))


async def workflow(request: web.Request, owner: str | None) -> web.Response:
    """`GET /jobs/{user,admin}/workflow?session_id=`: the chain a job belongs to."""
    session_id = query_param(request, "session_id")
    return json_response(await request.app[ENGINE].service.workflow(session_id, owner))
