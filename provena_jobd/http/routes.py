"""The Job API's routes: thin adapters from HTTP to `JobService`, and `ROUTES`, the one table
of every route jobd serves (see route_table.py)."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from .. import coercion
from ..coercion import Problem
from ..config import flatten
from ..identity import may_act_for_others
from ..launch_options import KEY_HEADER, REPLAYED_HEADER
from ..models import (
    MAX_WAIT_S,
    TERMINAL_STATUSES,
    AccessReport,
    AdminListBatchRequest,
    AdminListJobsRequest,
    BatchSummary,
    BatchSummaryRequest,
    HealthResponse,
    JobResponse,
    LaunchJobRequest,
    LaunchJobResponse,
    ListBatchRequest,
    ListJobsRequest,
    ListJobsResponse,
    ReplayedLaunch,
    RetryResponse,
    WorkflowResponse,
)
from ..pool_models import PoolsResponse
from ..waiting import why_waiting
from .actions import batch_summary, cancel, retry, workflow
from .auth import Access
from .catalog_routes import CATALOG_ROUTES
from .errors import client_closed, json_response
from .event_stream import events
from .hangups import client_gone, unless_client_leaves
from .history_routes import HISTORY_ROUTES
from .keys import CALLER, ENGINE
from .ops_routes import OPS_ROUTES
from .report_files import report_file
from .route_table import Route, twins
from .scheduling_routes import SCHEDULING_ROUTES
from .validation import decode_body, optional_float, query_param
from .worker_routes import WORKER_ROUTES

_HEALTH = msgspec.json.encode(HealthResponse())


async def health(request: web.Request) -> web.Response:
    """`GET /`: the reference's health check; a browser asking for a page goes to the panel."""
    accept = request.headers.get("Accept", "")
    if "text/html" in accept:
        raise web.HTTPFound("/ui/")
    return web.Response(
        body=_HEALTH, content_type="application/json", headers={"Link": '</ui/>; rel="ui"'}
    )


async def fetch(request: web.Request, owner: str | None) -> web.Response:
    """`GET /jobs/{user,admin}/fetch`: one job; with `wait_s`, it answers once the job has
    finished or after that long."""
    session_id = query_param(request, "session_id")
    wait_s = optional_float(request, "wait_s", 0.0, MAX_WAIT_S)
    server = request.app[ENGINE]
    job = await server.service.fetch(session_id, caller=owner)
    if wait_s and job.status not in TERMINAL_STATUSES:
        # A client that hung up waits for nothing: its waiter goes, not after `wait_s`.
        await unless_client_leaves(request, server.feed.wait_finished(session_id, wait_s))
        if client_gone(request):
            return client_closed()  # nobody to answer: a 499, as nginx counts it
        job = await server.service.fetch(session_id, caller=owner)
    waiting = await why_waiting(server.store, job, server.pools, server.clock.now())
    return json_response(JobResponse(job, waiting))


async def list_jobs(request: web.Request, owner: str | None) -> web.Response:
    """`POST /jobs/{user,admin}/list`: the caller's jobs, or everyone's (or one user's)."""
    body: ListJobsRequest | AdminListJobsRequest
    if owner is None:
        body = await decode_body(request, AdminListJobsRequest)
        username = body.username_filter
    else:
        body = await decode_body(request, ListJobsRequest)
        username = owner
    page = await request.app[ENGINE].service.list_jobs(
        body.limit, body.pagination_key, username=username, filters=body
    )
    return json_response(page)


async def list_batch(request: web.Request, owner: str | None) -> web.Response:
    """`POST /jobs/{user,admin}/list_batch`: a batch, newest first; a user's must be all
    theirs, an admin's `username_filter` narrows it."""
    body: ListBatchRequest | AdminListBatchRequest
    if owner is None:
        body = await decode_body(request, AdminListBatchRequest)
        username = body.username_filter
    else:
        body = await decode_body(request, ListBatchRequest)
        username = None
    page = await request.app[ENGINE].service.list_jobs(
        body.limit,
        body.pagination_key,
        batch_id=body.batch_id,
        username=username,
        owner=owner,
        filters=body,
    )
    return json_response(page)


def _text(value: Any) -> str | None:
    """A body field as a string field reads it (`5` is `"5"`), or None if it is not text."""
    try:
        return coercion.convert(value, str)
    except coercion.Invalid:
        return None


async def launch(request: web.Request) -> web.Response:
    """`POST /jobs/admin/launch`: enqueue a job, durably, before answering."""
    server = request.app[ENGINE]

    def type_problems(value: Any) -> list[Problem]:
        """Unknown types in a body the decoder refuses, so that one 422 names them too."""
        if not isinstance(value, dict):
            return []
        job_type, sub_type = (_text(value.get(name)) for name in ("job_type", "job_sub_type"))
        return server.service.type_problems(job_type, sub_type)

    body = await decode_body(request, LaunchJobRequest, more=type_problems)
    caller = request[CALLER]
    response = await server.service.launch(
        body,
        caller=caller.username,
        may_act_for_others=may_act_for_others(caller, server.settings.auth),
        key_header=request.headers.get(KEY_HEADER),
    )
    answer = json_response(response)
    if isinstance(response, ReplayedLaunch):
        # The same body as the first time; this says nothing new was launched.
        answer.headers[REPLAYED_HEADER] = "true"
    return answer


async def pool_state(request: web.Request) -> web.Response:
    """`GET /admin/pool`: per job type, workers by state, waiting jobs and settings in force."""
    return json_response(PoolsResponse(await request.app[ENGINE].pool_snapshots()))


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
    settings = request.app[ENGINE].settings
    text = "".join(f"{key}={value}\n" for key, value in flatten(settings))
    return web.Response(
        text=text,
        content_type="text/plain",
        headers={"Content-Disposition": 'attachment; filename="config.txt"'},
    )


ROUTES: list[Route] = [
    Route("GET", "/", health, Access.PUBLIC, "Health check", response=HealthResponse),
    *twins(
        "GET",
        "fetch",
        fetch,
        Access.READ,
        ("One of the caller's jobs", "Any job"),
        query=("session_id",),
        response=JobResponse,
        waits=True,
    ),
    *twins(
        "POST",
        "list",
        list_jobs,
        Access.READ,
        ("The caller's jobs, newest first", "Everyone's jobs, or one user's, newest first"),
        body=(ListJobsRequest, AdminListJobsRequest),
        response=ListJobsResponse,
    ),
    *twins(
        "POST",
        "list_batch",
        list_batch,
        Access.READ,
        ("A batch of the caller's, newest first", "Any batch, newest first"),
        body=(ListBatchRequest, AdminListBatchRequest),
        response=ListJobsResponse,
    ),
    *twins(
        "POST",
        "retry",
        retry,
        Access.READ_WRITE,
        ("Relaunch one of the caller's FAILED jobs", "Relaunch anyone's FAILED job"),
        query=("session_id",),
        response=RetryResponse,
    ),
    *twins(
        "POST",
        "cancel",
        cancel,
        Access.READ_WRITE,
        ("Stop one of the caller's jobs", "Stop anyone's job"),
        query=("session_id",),
        response=JobResponse,
    ),
    *twins(
        "POST",
        "batch_summary",
        batch_summary,
        Access.READ,
        ("Counts by status for one of the caller's batches", "Counts by status for any batch"),
        body=(BatchSummaryRequest, BatchSummaryRequest),
        response=BatchSummary,
    ),
    *twins(
        "GET",
        "workflow",
        workflow,
        Access.READ,
        ("The chain one of the caller's jobs belongs to", "The chain any job belongs to"),
        query=("session_id",),
        response=WorkflowResponse,
    ),
    *twins(
        "GET",
        "events",
        events,
        Access.READ,
        ("Changes to the caller's jobs, as server-sent events", "Changes to every job"),
        response="text/event-stream",
    ),
    Route(
        "POST",
        "/jobs/admin/launch",
        launch,
        Access.READ_WRITE,
        "Launch a job",
        body=LaunchJobRequest,
        response=LaunchJobResponse,
        idempotent=True,
    ),
    Route("GET", "/reports/{name}", report_file, Access.PUBLIC, "A report", listed=False),
    Route(
        "GET",
        "/admin/config",
        admin_config,
        Access.ADMIN,
        "The configuration in force, secrets redacted",
        response="text/plain",
    ),
    Route(
        "GET",
        "/admin/pool",
        pool_state,
        Access.READ,
        "Each pool's workers, waiting jobs and settings",
        response=PoolsResponse,
    ),
    *(
        Route(
            "GET",
            f"/check-access/check-{name}-access",
            check_access,
            access,
            f"Who the caller is, if they have {name} access",
            response=AccessReport,
        )
        for name, access in (
            ("general", Access.USER),
            ("read", Access.READ),
            ("write", Access.READ_WRITE),
            ("admin", Access.ADMIN),
        )
    ),
    *WORKER_ROUTES,
    *OPS_ROUTES,
    *SCHEDULING_ROUTES,
    *CATALOG_ROUTES,
    *HISTORY_ROUTES,
]
