"""Periodic jobs: launches each `[[schedules]]` entry's job at its cron due times.

Each due time is recorded in the store with a unique key (schedule, due time) in the same
transaction as its job, so it fires once: after a restart, and with several nodes on one
database, a due time some node recorded is never launched again.
"""

from __future__ import annotations

import logging

from .. import cron
from ..clock import Clock
from ..config import ScheduleSettings
from ..errors import ApiError, ConfigError
from ..models import LaunchJobRequest
from ..queue.store import JobStore, ScheduleFire
from ..scheduling_models import SchedulesResponse, ScheduleView
from ..service import JobService

log = logging.getLogger(__name__)

MAX_SLEEP_S = 60.0  # look again at least this often (a clock jump, another node's fire)


def _request(schedule: ScheduleSettings) -> LaunchJobRequest:
    return LaunchJobRequest(
        job_type=schedule.job_type,
        job_sub_type=schedule.job_sub_type,
        job_payload=schedule.payload,
        username=schedule.user,
    )


class Scheduler:
    """Fires due schedules; `run_once(now)` is one pass, which tests call with a fake clock."""

    def __init__(
        self,
        store: JobStore,
        service: JobService,
        schedules: list[ScheduleSettings],
        clock: Clock,
    ) -> None:
        self.store = store
        self.service = service
        self.schedules = schedules
        self.clock = clock

    async def check(self) -> None:
        """Refuse to start with a schedule whose job could never be launched."""
        for schedule in self.schedules:
            try:
                await self.service.prepare(_request(schedule), caller=schedule.user)
            except (ApiError, ValueError) as exc:
                detail = getattr(exc, "detail", str(exc))
                raise ConfigError(
                    f"schedules[{schedule.name!r}]: its job cannot be launched: {detail}"
                ) from None

    async def run_once(self, now: float) -> list[str]:
        """Record every schedule's due time reached at `now`; the ids of the jobs launched."""
        last = await self.store.last_fires()
        launched = []
        for schedule in self.schedules:
            recorded = last.get(schedule.name)
            due = cron.decide(
                schedule.cron, recorded.due_at if recorded else None, now, schedule.missed
            )
            if due is None:
                continue
            job = None
            if due.fire:
                job, _ = await self.service.prepare(_request(schedule), caller=schedule.user)
            fire = ScheduleFire(schedule=schedule.name, due_at=due.due_at, job=job)
            if not await self.store.fire_schedule(fire):
                continue  # another node (or an earlier pass) recorded this due time
            if job is None:
                log.warning(
                    "schedule %s skipped a due time missed while jobd was down",
                    schedule.name,
                    extra={"action": "schedule_skipped"},
                )
                continue
            launched.append(job.session_id)
            self.service.notify(job.job_type)
            log.info("schedule %s launched a job", schedule.name, extra={"action": "scheduled"})
        return launched

    def next_wake(self, now: float) -> float:
        """When the next pass is due: the earliest next due time, but within MAX_SLEEP_S."""
        times = [cron.next_fire(schedule.cron, now) for schedule in self.schedules]
        return min([now + MAX_SLEEP_S, *times])

    async def views(self) -> SchedulesResponse:
        """Every schedule with its next run time and last recorded due time."""
        now = self.clock.now()
        last = await self.store.last_fires()
        views = []
        for schedule in self.schedules:
            recorded = last.get(schedule.name)
            views.append(
                ScheduleView(
                    name=schedule.name,
                    cron=schedule.cron,
                    job_type=schedule.job_type,
                    job_sub_type=schedule.job_sub_type,
                    user=schedule.user,
                    missed=schedule.missed,
                    next_run_at=cron.next_fire(schedule.cron, now),
                    last_due_at=recorded.due_at if recorded else None,
                    last_session_id=recorded.session_id if recorded else None,
                )
            )
        return SchedulesResponse(views)

    async def run_forever(self) -> None:
        """Fire due schedules until cancelled."""
        while True:
            try:
                await self.run_once(self.clock.now())
            except Exception:
                log.exception("schedule pass failed", extra={"action": "schedule_failed"})
            now = self.clock.now()
            await self.clock.sleep(max(0.0, self.next_wake(now) - now))
