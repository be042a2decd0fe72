"""`/jobs/worker/*`: the worker protocol over HTTP, for workers outside jobd in any language.

Each route decodes its request and hands it to the server's `WorkerGateway`; refusals are
`{"detail": ...}`: 409 when the attempt no longer holds the job, 400 for an unknown job,
422 for a request that does not validate.
"""

from __future__ import annotations

from aiohttp import web

from ..models import JobResponse
from ..worker_protocol import (
    AttemptRequest,
    ClaimRequest,
    ClaimResponse,
    FinishRequest,
    LeaseResponse,
    ProgressRequest,
    ReleaseRequest,
    StartRequest,
)
from .auth import Access
from .errors import client_closed, json_response
from .hangups import client_gone
from .keys import ENGINE
from .route_table import Route
from .validation import decode_body


async def claim(request: web.Request) -> web.Response:
    """`POST /jobs/worker/claim`: up to `n` jobs of a type, long-polling up to `wait_s`;
    a claim whose worker hung up stops polling, and gives back what it claimed."""
    body = await decode_body(request, ClaimRequest)
    server = request.app[ENGINE]
    jobs = await server.gateway.claim(body, gone=lambda: client_gone(request))
    if client_gone(request):
        return client_closed()  # nobody to answer: a 499, as a fetch's long poll
    return json_response(ClaimResponse(jobs=jobs, lease_s=server.settings.queue.lease_s))


async def start(request: web.Request) -> web.Response:
    """`POST /jobs/worker/start`: mark a claimed job IN_PROGRESS."""
    body = await decode_body(request, StartRequest)
    return json_response(JobResponse(await request.app[ENGINE].gateway.start(body)))


async def heartbeat(request: web.Request) -> web.Response:
    """`POST /jobs/worker/heartbeat`: keep holding a job for another lease."""
    body = await decode_body(request, AttemptRequest)
    return json_response(await request.app[ENGINE].gateway.heartbeat(body))


async def progress(request: web.Request) -> web.Response:
    """`POST /jobs/worker/progress`: show a running job's progress."""
    body = await decode_body(request, ProgressRequest)
    return json_response(JobResponse(await request.app[ENGINE].gateway.progress(body)))


async def finish(request: web.Request) -> web.Response:
    """`POST /jobs/worker/finish`: end the attempt SUCCEEDED or FAILED."""
    body = await decode_body(request, FinishRequest)
    return json_response(JobResponse(await request.app[ENGINE].gateway.finish(body)))


async def release(request: web.Request) -> web.Response:
    """`POST /jobs/worker/release`: give the job back to the queue."""
    body = await decode_body(request, ReleaseRequest)
    return json_response(JobResponse(await request.app[ENGINE].gateway.release(body)))


WORKER_ROUTES: list[Route] = [
    Route(
        "POST",
        f"/jobs/worker/{name}",
        handler,
        Access.WORKER,
        summary,
        body=body,
        response=response,
    )
    for name, handler, summary, body, response in (
        ("claim", claim, "Claim jobs of a type, long-polling", ClaimRequest, ClaimResponse),
        ("start", start, "Mark a claimed job IN_PROGRESS", StartRequest, JobResponse),
        ("heartbeat", heartbeat, "Hold a job for another lease", AttemptRequest, LeaseResponse),
        ("progress", progress, "Show a running job's progress", ProgressRequest, JobResponse),
        ("finish", finish, "End the attempt SUCCEEDED or FAILED", FinishRequest, JobResponse),
        ("release", release, "Give the job back to the queue", ReleaseRequest, JobResponse),
    )
]
