"""Route handlers: thin adapters from HTTP to `JobService`, wire-compatible with the reference."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import web

from ..config import flatten
from ..identity import may_act_for_others
from ..models import (
    TERMINAL_STATUSES,
    AccessReport,
    AdminListBatchRequest,
    AdminListJobsRequest,
    HealthResponse,
    JobResponse,
    LaunchJobRequest,
    ListBatchRequest,
    ListJobsRequest,
)
from ..queue.store import ListScope
from ..workers.pool import PoolsResponse
from .actions import (
    admin_batch_summary,
    admin_cancel,
    admin_retry,
    admin_workflow,
    user_batch_summary,
    user_cancel,
    user_retry,
    user_workflow,
)
from .auth import ACCESS, Access
from .errors import json_response
from .event_stream import admin_events, events
from .keys import CALLER, SERVER
from .report_files import report_file
from .scheduling_routes import SCHEDULING_ROUTES
from .validation import decode_body, optional_float, query_param
from .worker_routes import WORKER_ROUTES

MAX_WAIT_S = 60.0
_HEALTH = msgspec.json.encode(HealthResponse())


async def health(request: web.Request) -> web.Response:
    """`GET /`: the reference's health check; a browser asking for a page goes to the panel."""
    accept = request.headers.get("Accept", "")
    if "text/html" in accept:
        raise web.HTTPFound("/ui/")
    return web.Response(
        body=_HEALTH, content_type="application/json", headers={"Link": '</ui/>; rel="ui"'}
    )


async def _fetch(request: web.Request, caller: str | None) -> web.Response:
    """A fetch; with `wait_s`, it answers once the job has finished or after that long."""
    session_id = query_param(request, "session_id")
    wait_s = optional_float(request, "wait_s", 0.0, MAX_WAIT_S)
    server = request.app[SERVER]
    job = await server.service.fetch(session_id, caller=caller)
    if wait_s and job.status not in TERMINAL_STATUSES:
        await server.feed.wait_finished(session_id, wait_s)
        job = await server.service.fetch(session_id, caller=caller)
    return json_response(JobResponse(job))


async def user_fetch(request: web.Request) -> web.Response:
    """`GET /jobs/user/fetch`: one of the caller's jobs."""
    return await _fetch(request, request[CALLER].username)


async def admin_fetch(request: web.Request) -> web.Response:
    """`GET /jobs/admin/fetch`: any job."""
    return await _fetch(request, None)


async def user_list(request: web.Request) -> web.Response:
    """`POST /jobs/user/list`: the caller's jobs, newest first."""
    body = await decode_body(request, ListJobsRequest)
    scope = ListScope(username=request[CALLER].username)
    page = await request.app[SERVER].service.list_jobs(scope, body.limit, body.pagination_key)
    return json_response(page)


async def user_list_batch(request: web.Request) -> web.Response:
    """`POST /jobs/user/list_batch`: a batch of the caller's, newest first."""
    body = await decode_body(request, ListBatchRequest)
    scope = ListScope(batch_id=body.batch_id)
    service = request.app[SERVER].service
    owner = request[CALLER].username
    page = await service.list_jobs(scope, body.limit, body.pagination_key, owner=owner)
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
    server = request.app[SERVER]
    caller = request[CALLER]
    response = await server.service.launch(
        body,
        caller=caller.username,
        may_act_for_others=may_act_for_others(caller, server.settings.auth),
        key_header=request.headers.get("Idempotency-Key"),
    )
    return json_response(response)


async def pool_state(request: web.Request) -> web.Response:
    """`GET /admin/pool`: per job type, workers by state, waiting jobs and settings in force."""
    return json_response(PoolsResponse(await request.app[SERVER].pool_snapshots()))


async def check_access(request: web.Request) -> web.Response:
    """`GET /check-access/check-*-access`: who the caller is, if the route's roles allow."""
    caller = request[CALLER]
    return json_response(
        AccessReport(
            username=caller.username,
            email=caller.email,
            roles=sorted(caller.roles),
            access_token=caller.token or "",
        )
    )


async def admin_config(request: web.Request) -> web.Response:
    """`GET /admin/config`: the effective configuration as `config.txt`, secrets redacted."""
    settings = request.app[SERVER].settings
    text = "".join(f"{key}={value}\n" for key, value in flatten(settings))
    return web.Response(
        text=text,
        content_type="text/plain",
        headers={"Content-Disposition": 'attachment; filename="config.txt"'},
    )


# method, path, handler, who may call it, listed in /openapi.json
ROUTES: list[
    tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]], Access, bool]
] = [
    ("GET", "/", health, Access.PUBLIC, True),
    ("GET", "/jobs/user/fetch", user_fetch, Access.USER, True),
    ("POST", "/jobs/user/list", user_list, Access.USER, True),
    ("POST", "/jobs/user/list_batch", user_list_batch, Access.USER, True),
    ("POST", "/jobs/user/retry", user_retry, Access.USER, True),
    ("POST", "/jobs/user/cancel", user_cancel, Access.USER, True),
    ("POST", "/jobs/user/batch_summary", user_batch_summary, Access.USER, True),
    ("GET", "/jobs/user/workflow", user_workflow, Access.USER, True),
    ("GET", "/jobs/user/events", events, Access.USER, True),
    ("POST", "/jobs/admin/launch", launch, Access.READ_WRITE, True),
    ("GET", "/jobs/admin/fetch", admin_fetch, Access.READ, True),
    ("POST", "/jobs/admin/list", admin_list, Access.READ, True),
    ("POST", "/jobs/admin/list_batch", admin_list_batch, Access.READ, True),
    ("POST", "/jobs/admin/retry", admin_retry, Access.READ_WRITE, True),
    ("POST", "/jobs/admin/cancel", admin_cancel, Access.READ_WRITE, True),
    ("POST", "/jobs/admin/batch_summary", admin_batch_summary, Access.READ, True),
    ("GET", "/jobs/admin/workflow", admin_workflow, Access.READ, True),
    ("GET", "/jobs/admin/events", admin_events, Access.READ, True),
    ("GET", "/reports/{name}", report_file, Access.PUBLIC, False),
    ("GET", "/admin/config", admin_config, Access.ADMIN, True),
    ("GET", "/admin/pool", pool_state, Access.READ, True),
    ("GET", "/check-access/check-general-access", check_access, Access.USER, True),
    ("GET", "/check-access/check-read-access", check_access, Access.READ, True),
    ("GET", "/check-access/check-write-access", check_access, Access.READ_WRITE, True),
    ("GET", "/check-access/check-admin-access", check_access, Access.ADMIN, True),
    *WORKER_ROUTES,
    *SCHEDULING_ROUTES,
]


def add_routes(app: web.Application) -> None:
    """Register every route and the access it demands."""
    access: dict[str, Access] = {}
    for method, path, handler, needs, _ in ROUTES:
        app.router.add_route(method, path, handler)
        access[path] = needs
    app[ACCESS] = access
