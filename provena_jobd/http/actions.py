"""Routes that act on jobs beyond the reference: retry, cancel, batch summary, workflow.

Each has a user twin (the caller's own jobs) and an admin twin (anyone's).
"""

from __future__ import annotations

from aiohttp import web

from ..models import BatchSummaryRequest, JobResponse, RetryResponse
from .errors import json_response
from .keys import CALLER, SERVER
from .validation import decode_body, query_param


async def _retry(request: web.Request, owner: str | None) -> web.Response:
    session_id = query_param(request, "session_id")
    launched = await request.app[SERVER].service.retry(session_id, owner)
    return json_response(RetryResponse(launched.session_id))


async def user_retry(request: web.Request) -> web.Response:
    """`POST /jobs/user/retry?session_id=`: relaunch one of your FAILED jobs."""
    return await _retry(request, request[CALLER].username)


async def admin_retry(request: web.Request) -> web.Response:
    """`POST /jobs/admin/retry?session_id=`: relaunch anyone's FAILED job."""
    return await _retry(request, None)


async def _cancel(request: web.Request, owner: str | None) -> web.Response:
    session_id = query_param(request, "session_id")
    service = request.app[SERVER].service
    job, _ = await service.cancel(session_id, owner, by=request[CALLER].username)
    return json_response(JobResponse(job))


async def user_cancel(request: web.Request) -> web.Response:
    """`POST /jobs/user/cancel?session_id=`: stop one of your jobs."""
    return await _cancel(request, request[CALLER].username)


async def admin_cancel(request: web.Request) -> web.Response:
    """`POST /jobs/admin/cancel?session_id=`: stop anyone's job."""
    return await _cancel(request, None)


async def _batch_summary(request: web.Request, owner: str | None) -> web.Response:
    body = await decode_body(request, BatchSummaryRequest)
    return json_response(await request.app[SERVER].service.batch_summary(body.batch_id, owner))


async def user_batch_summary(request: web.Request) -> web.Response:
    """`POST /jobs/user/batch_summary`: counts by status for one of your batches."""
    return await _batch_summary(request, request[CALLER].username)


async def admin_batch_summary(request: web.Request) -> web.Response:
    """`POST /jobs/admin/batch_summary`: counts by status for any batch."""
    return await _batch_summary(request, None)


async def _workflow(request: web.Request, owner: str | None) -> web.Response:
    session_id = query_param(request, "session_id")
    return json_response(await request.app[SERVER].service.workflow(session_id, owner))


async def user_workflow(request: web.Request) -> web.Response:
    """`GET /jobs/user/workflow?session_id=`: the chain one of your jobs belongs to."""
    return await _workflow(request, request[CALLER].username)


async def admin_workflow(request: web.Request) -> web.Response:
    """`GET /jobs/admin/workflow?session_id=`: the chain any job belongs to."""
    return await _workflow(request, None)
