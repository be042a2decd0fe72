"""Route handlers: thin adapters from HTTP to `JobService`, wire-compatible with the reference."""

from __future__ import annotations

import msgspec
from aiohttp import web

from ..errors import BadRequest
from ..models import (
    AdminListBatchRequest,
    AdminListJobsRequest,
    HealthResponse,
    JobResponse,
    LaunchJobRequest,
    ListBatchRequest,
    ListJobsRequest,
)
from ..queue.store import ListScope
from .errors import json_response
from .keys import CALLER, SERVER
from .validation import decode_body, query_param

NOT_IMPLEMENTED = "Not yet implemented"
_HEALTH = msgspec.json.encode(HealthResponse())


async def health(request: web.Request) -> web.Response:
    """`GET /`: the reference's health check."""
    return web.Response(body=_HEALTH, content_type="application/json")


async def user_fetch(request: web.Request) -> web.Response:
    """`GET /jobs/user/fetch`: one of the caller's jobs."""
    session_id = query_param(request, "session_id")
    job = await request.app[SERVER].service.fetch(session_id, caller=request[CALLER])
    return json_response(JobResponse(job))


async def admin_fetch(request: web.Request) -> web.Response:
    """`GET /jobs/admin/fetch`: any job."""
    session_id = query_param(request, "session_id")
    job = await request.app[SERVER].service.fetch(session_id, caller=None)
    return json_response(JobResponse(job))


async def user_list(request: web.Request) -> web.Response:
    """`POST /jobs/user/list`: the caller's jobs, newest first."""
    body = await decode_body(request, ListJobsRequest)
    scope = ListScope(username=request[CALLER])
    page = await request.app[SERVER].service.list_jobs(scope, body.limit, body.pagination_key)
    return json_response(page)


async def user_list_batch(request: web.Request) -> web.Response:
    """`POST /jobs/user/list_batch`: a batch of the caller's, newest first."""
    body = await decode_body(request, ListBatchRequest)
    scope = ListScope(batch_id=body.batch_id)
    service = request.app[SERVER].service
    page = await service.list_jobs(scope, body.limit, body.pagination_key, owner=request[CALLER])
    return json_response(page)


async def admin_list(request: web.Request) -> web.Response:
    """`POST /jobs/admin/list`: everyone's jobs, or one user's."""
    body = await decode_body(request, AdminListJobsRequest)
    scope = ListScope(username=body.username_filter)
    page = await request.app[SERVER].service.list_jobs(scope, body.limit, body.pagination_key)
    return json_response(page)


async def admin_list_batch(request: web.Request) -> web.Response:
    """`POST /jobs/admin/list_batch`: a batch of any owner; `username_filter` narrows it."""
    body = await decode_body(request, AdminListBatchRequest)
    scope = ListScope(batch_id=body.batch_id, username=body.username_filter)
    page = await request.app[SERVER].service.list_jobs(scope, body.limit, body.pagination_key)
    return json_response(page)


async def launch(request: web.Request) -> web.Response:
    """`POST /jobs/admin/launch`: enqueue a job, durably, before answering."""
    body = await decode_body(request, LaunchJobRequest)
    response = await request.app[SERVER].service.launch(body, caller=request[CALLER])
    return json_response(response)


async def retry_stub(request: web.Request) -> web.Response:
    """`POST /jobs/*/retry`: present and authenticated as in the reference, not yet implemented."""
    query_param(request, "session_id")
    raise BadRequest(NOT_IMPLEMENTED)


async def pool_state(request: web.Request) -> web.Response:
    """`GET /admin/pool`: per job type, workers by state, waiting jobs and settings in force."""
    snapshots = await request.app[SERVER].pool_snapshots()
    return json_response({"pools": snapshots})


def add_routes(app: web.Application) -> None:
    """Register every route."""
    app.router.add_get("/", health)
    app.router.add_get("/jobs/user/fetch", user_fetch)
    app.router.add_post("/jobs/user/list", user_list)
    app.router.add_post("/jobs/user/list_batch", user_list_batch)
    app.router.add_post("/jobs/user/retry", retry_stub)
    app.router.add_post("/jobs/admin/launch", launch)
    app.router.add_get("/jobs/admin/fetch", admin_fetch)
    app.router.add_post("/jobs/admin/list", admin_list)
    app.router.add_post("/jobs/admin/list_batch", admin_list_batch)
    app.router.add_post("/jobs/admin/retry", retry_stub)
    app.router.add_get("/admin/pool", pool_state)
