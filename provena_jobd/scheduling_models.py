"""Wire models of the scheduling routes (`/admin/schedules`, `/admin/paused`, pause, resume).

They live apart from `workers/scheduler.py` and `flow_control.py` so that a client reading
them does not import the scheduler, the service and the store.
"""

from __future__ import annotations

import msgspec


class ScheduleView(msgspec.Struct, kw_only=True):
    """A schedule as `GET /admin/schedules` shows it, with its next run time."""

    name: str
    cron: str
    job_type: str
    job_sub_type: str
    user: str
    missed: str
    next_run_at: float
    last_due_at: float | None
    last_session_id: str | None


class SchedulesResponse(msgspec.Struct):
    """Body of `GET /admin/schedules`."""

    schedules: list[ScheduleView]


class PausedResponse(msgspec.Struct, kw_only=True):
    """Body of the pause routes: the job types paused now."""

    paused: list[str]
