"""Admin routes of issue 14: periodic schedules, and pausing and resuming a job type."""

from __future__ import annotations

from aiohttp import web

from ..flow_control import PausedResponse
from ..workers.scheduler import SchedulesResponse
from .auth import Access
from .errors import json_response
from .keys import SERVER
from .validation import query_param
from .worker_routes import Route


async def schedules(request: web.Request) -> web.Response:
    """`GET /admin/schedules`: the `[[schedules]]` with their next and last run times."""
    return json_response(await request.app[SERVER].scheduler.views())


async def paused(request: web.Request) -> web.Response:
    """`GET /admin/paused`: the job types paused now."""
    return json_response(await request.app[SERVER].flow.paused())


async def pause(request: web.Request) -> web.Response:
    """`POST /admin/pause?job_type=`: claim nothing of that type until it is resumed."""
    job_type = query_param(request, "job_type")
    return json_response(await request.app[SERVER].flow.set_paused(job_type, True))


async def resume(request: web.Request) -> web.Response:
    """`POST /admin/resume?job_type=`: run that type's jobs again."""
    job_type = query_param(request, "job_type")
    return json_response(await request.app[SERVER].flow.set_paused(job_type, False))


SCHEDULING_ROUTES: list[Route] = [
    ("GET", "/admin/schedules", schedules, Access.READ, True),
    ("GET", "/admin/paused", paused, Access.READ, True),
    ("POST", "/admin/pause", pause, Access.ADMIN, True),
    ("POST", "/admin/resume", resume, Access.ADMIN, True),
]

# path -> (request model, required query parameters, success model), for /openapi.json
SCHEDULING_OPERATIONS: dict[str, tuple[type | None, tuple[str, ...], type | str]] = {
    "/admin/schedules": (None, (), SchedulesResponse),
    "/admin/paused": (None, (), PausedResponse),
    "/admin/pause": (None, ("job_type",), PausedResponse),
    "/admin/resume": (None, ("job_type",), PausedResponse),
}
