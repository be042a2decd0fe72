"""Admin routes of issue 14: periodic schedules, and pausing and resuming a job type."""

from __future__ import annotations

from aiohttp import web

from ..scheduling_models import PausedResponse, SchedulesResponse
from .auth import Access
from .errors import json_response
from .keys import ENGINE
from .route_table import Route
from .validation import query_param


async def schedules(request: web.Request) -> web.Response:
    """`GET /admin/schedules`: the `[[schedules]]` with their next and last run times."""
    return json_response(await request.app[ENGINE].scheduler.views())


async def paused(request: web.Request) -> web.Response:
    """`GET /admin/paused`: the job types paused now."""
    return json_response(await request.app[ENGINE].flow.paused())


async def pause(request: web.Request) -> web.Response:
    """`POST /admin/pause?job_type=`: claim nothing of that type until it is resumed."""
    job_type = query_param(request, "job_type")
    return json_response(await request.app[ENGINE].flow.set_paused(job_type, True))


async def resume(request: web.Request) -> web.Response:
    """`POST /admin/resume?job_type=`: run that type's jobs again."""
    job_type = query_param(request, "job_type")
    return json_response(await request.app[ENGINE].flow.set_paused(job_type, False))


SCHEDULING_ROUTES: list[Route] = [
    Route(
        "GET",
        "/admin/schedules",
        schedules,
        Access.READ,
        "The periodic schedules with their next and last run times",
        response=SchedulesResponse,
    ),
    Route(
        "GET",
        "/admin/paused",
        paused,
        Access.READ,
        "The job types paused now",
        response=PausedResponse,
    ),
    Route(
        "POST",
        "/admin/pause",
        pause,
        Access.ADMIN,
        "Pause a job type: its waiting jobs stay PENDING until it is resumed",
        query=("job_type",),
        response=PausedResponse,
    ),
    Route(
        "POST",
        "/admin/resume",
        resume,
        Access.ADMIN,
        "Resume a paused job type",
        query=("job_type",),
        response=PausedResponse,
    ),
]
