"""`JobdClient`: the Job API's calls (launch, fetch, wait, list, batches, workflows, pools,
schedules and pauses)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from ..clock import monotonic
from ..launch_options import REPLAYED_HEADER
from ..models import (
    MAX_WAIT_S,
    TERMINAL_STATUSES,
    AdminListBatchRequest,
    AdminListJobsRequest,
    BatchSummary,
    BatchSummaryRequest,
    Job,
    JobResponse,
    JobStatus,
    LaunchJobRequest,
    LaunchJobResponse,
    ListBatchRequest,
    ListJobsRequest,
    ListJobsResponse,
    ReplayedLaunch,
    RetryResponse,
    WorkflowResponse,
)
from .errors import ConnectionFailed, WaitTimedOut
from .events import EventStream
from .transport import Transport

if TYPE_CHECKING:  # the worker modules are imported only by `pool()`: a quicker `jobd` command
    from ..pool_models import PoolsResponse
    from ..scheduling_models import PausedResponse, SchedulesResponse

# How long after its `wait_s` a long poll's answer may come before `wait` stops waiting for it.
LONG_POLL_SLACK_S = 2.0


def job_payload(job: Job) -> dict[str, Any]:
    """The job's payload, decoded."""
    payload: dict[str, Any] = msgspec.json.decode(job.payload)
    return payload


def job_result(job: Job) -> Any:
    """The job's result, decoded (None until it has succeeded)."""
    return msgspec.json.decode(job.result)


def is_finished(job: Job) -> bool:
    """True once the job is SUCCEEDED or FAILED (it never changes again)."""
    return job.status in TERMINAL_STATUSES


class JobdClient(Transport):
    """An async client for one jobd; use it with `async with`, or call `close()`."""

    # -- jobs ----------------------------------------------------------------------------------

    async def health(self) -> str:
        """`GET /`: jobd's health message (raises if it does not answer)."""
        body = await self._call("GET", "/")
        message: str = msgspec.json.decode(body)["message"]
        return message

    async def launch(
        self,
        job_type: str,
        job_sub_type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        username: str | None = None,
        new_batch: bool = False,
        batch_id: str | None = None,
        idempotency_key: str | None = None,
        delay_s: float | None = None,
    ) -> LaunchJobResponse:
        """Launch a job; `new_batch` starts a batch with it, `batch_id` adds it to one.

        With `idempotency_key`, a repeat of the same launch (same key, same request, same
        user) answers with the first launch's job and launches nothing: it returns a
        `ReplayedLaunch`, whose `replayed` is True (False on a launch that made a job). The
        same key with another request raises `Conflict`. With `delay_s`, the job waits
        PENDING that many seconds before it may run.
        """
        request = LaunchJobRequest(
            job_type=job_type,
            job_sub_type=job_sub_type,
            job_payload=dict(payload or {}),
            username=username,
            request_batch_id=new_batch,
            add_to_batch=batch_id,
            idempotency_key=idempotency_key,
            delay_s=delay_s,
        )
        body, headers = await self._exchange("POST", "/jobs/admin/launch", body=request)
        replayed = headers.get(REPLAYED_HEADER) == "true"
        return msgspec.json.decode(body, type=ReplayedLaunch if replayed else LaunchJobResponse)

    async def fetch(self, session_id: str, *, admin: bool = False, wait_s: float = 0.0) -> Job:
        """One job; with `wait_s` (at most 60) jobd answers once it finishes or after that long."""
        return (await self.fetch_response(session_id, admin=admin, wait_s=wait_s)).job

    async def fetch_response(
        self, session_id: str, *, admin: bool = False, wait_s: float = 0.0
    ) -> JobResponse:
        """A fetch's whole answer: the job and, while it has not started, `waiting` (why)."""
        params = {"session_id": session_id}
        if wait_s > 0:
            params["wait_s"] = f"{min(wait_s, MAX_WAIT_S):g}"
        body = await self._call(
            "GET",
            f"/jobs/{_side(admin)}/fetch",
            params=params,
            timeout_s=self.timeout_s + min(wait_s, MAX_WAIT_S),
        )
        return msgspec.json.decode(body, type=JobResponse)

    async def wait(
        self, session_id: str, *, timeout_s: float | None = None, admin: bool = False
    ) -> Job:
        """The job once it has finished (long polls, no busy polling); `WaitTimedOut` if not
        finished within `timeout_s` (None: wait as long as it takes)."""
        deadline = None if timeout_s is None else monotonic() + timeout_s
        while True:
            step = MAX_WAIT_S if deadline is None else min(MAX_WAIT_S, deadline - monotonic())
            if deadline is None:
                job = await self.fetch(session_id, admin=admin, wait_s=step)
            else:
                job = await self._poll_within(session_id, admin, max(step, 0.0))
            if is_finished(job):
                return job
            if deadline is not None and monotonic() >= deadline:
                raise WaitTimedOut(
                    f"job {session_id} did not finish within {timeout_s:g} s "
                    f"(it is {job.status.value})",
                    job,
                )

    async def _poll_within(self, session_id: str, admin: bool, wait_s: float) -> Job:
        """One long poll of `wait_s` that takes at most a moment longer, whatever jobd does.

        jobd's wait may outlast ours: its clock may be a test's fake one, which does not move
        while the test waits here. Then one plain fetch, as short. `asyncio.timeout`, not
        `wait_for`: on Python 3.11 `wait_for` can drop a cancel of the caller.
        """
        try:
            async with asyncio.timeout(wait_s + LONG_POLL_SLACK_S):
                return await self.fetch(session_id, admin=admin, wait_s=wait_s)
        except TimeoutError:
            pass
        try:
            async with asyncio.timeout(LONG_POLL_SLACK_S):
                return await self.fetch(session_id, admin=admin)
        except TimeoutError:
            raise ConnectionFailed(
                f"jobd at {self.url} did not answer a fetch of job {session_id} within "
                f"{wait_s + 2 * LONG_POLL_SLACK_S:g} s"
            ) from None

    async def list_jobs(
        self,
        *,
        admin: bool = False,
        username: str | None = None,
        page_size: int = 100,
        limit: int | None = None,
        status: JobStatus | None = None,
        search: str | None = None,
    ) -> AsyncIterator[Job]:
        """The caller's jobs, newest first, fetched page by page as you iterate.

        `admin` lists everyone's jobs; `username` (admin) only that user's; `limit` stops after
        that many jobs. `status` keeps the jobs in that status; `search` those whose session
        id, username, sub type, batch id, info or payload contains that text (ASCII letters
        in either case; jobd applies both, over every job, before it pages).
        """
        request: msgspec.Struct
        if admin or username is not None:
            request = AdminListJobsRequest(
                username_filter=username, limit=page_size, status=status, search=search
            )
            path = "/jobs/admin/list"
        else:
            request = ListJobsRequest(limit=page_size, status=status, search=search)
            path = "/jobs/user/list"
        async for job in self._pages(path, request, limit):
            yield job

    async def list_batch(
        self,
        batch_id: str,
        *,
        admin: bool = False,
        username: str | None = None,
        page_size: int = 100,
        limit: int | None = None,
        status: JobStatus | None = None,
        search: str | None = None,
    ) -> AsyncIterator[Job]:
        """A batch's jobs, newest first, fetched page by page as you iterate; `status` and
        `search` narrow them as in `list_jobs`."""
        request: msgspec.Struct
        if admin or username is not None:
            request = AdminListBatchRequest(
                batch_id=batch_id,
                username_filter=username,
                limit=page_size,
                status=status,
                search=search,
            )
            path = "/jobs/admin/list_batch"
        else:
            request = ListBatchRequest(
                batch_id=batch_id, limit=page_size, status=status, search=search
            )
            path = "/jobs/user/list_batch"
        async for job in self._pages(path, request, limit):
            yield job

    async def batch_summary(self, batch_id: str, *, admin: bool = False) -> BatchSummary:
        """A batch's jobs counted by status, and whether all of them have finished."""
        body = await self._call(
            "POST",
            f"/jobs/{_side(admin)}/batch_summary",
            body=BatchSummaryRequest(batch_id=batch_id),
        )
        return msgspec.json.decode(body, type=BatchSummary)

    async def workflow(self, session_id: str, *, admin: bool = False) -> WorkflowResponse:
        """The chain of jobs a job belongs to, in launch order."""
        body = await self._call(
            "GET", f"/jobs/{_side(admin)}/workflow", params={"session_id": session_id}
        )
        return msgspec.json.decode(body, type=WorkflowResponse)

    async def retry(self, session_id: str, *, admin: bool = False) -> RetryResponse:
        """Relaunch a FAILED job as a new job; returns the new job's session id."""
        body = await self._call(
            "POST", f"/jobs/{_side(admin)}/retry", params={"session_id": session_id}
        )
        return msgspec.json.decode(body, type=RetryResponse)

    async def cancel(self, session_id: str, *, admin: bool = False) -> Job:
        """Cancel a job: a waiting one ends FAILED at once, a running one is asked to stop."""
        body = await self._call(
            "POST", f"/jobs/{_side(admin)}/cancel", params={"session_id": session_id}
        )
        return msgspec.json.decode(body, type=JobResponse).job

    async def pool(self) -> PoolsResponse:
        """Every pool's workers by state, waiting jobs, counters and settings."""
        from ..pool_models import PoolsResponse

        return msgspec.json.decode(await self._call("GET", "/admin/pool"), type=PoolsResponse)

    async def schedules(self) -> SchedulesResponse:
        """The periodic schedules with their next run times (issue 14)."""
        from ..scheduling_models import SchedulesResponse

        body = await self._call("GET", "/admin/schedules")
        return msgspec.json.decode(body, type=SchedulesResponse)

    async def paused(self) -> PausedResponse:
        """The job types paused now."""
        from ..scheduling_models import PausedResponse

        return msgspec.json.decode(await self._call("GET", "/admin/paused"), type=PausedResponse)

    async def set_paused(self, job_type: str, paused: bool) -> PausedResponse:
        """Pause or resume a job type (admin); the paused types afterwards."""
        from ..scheduling_models import PausedResponse

        path = "/admin/pause" if paused else "/admin/resume"
        body = await self._call("POST", path, params={"job_type": job_type})
        return msgspec.json.decode(body, type=PausedResponse)

    def events(self) -> EventStream:
        """Jobs as they change (the caller's; an admin's: everyone's), from the event stream.

        `async with client.events() as events:` guarantees every change after it is entered
        is seen; `async for job in events` then yields them until jobd stops.
        """
        return EventStream(self)

    async def _pages(
        self, path: str, request: msgspec.Struct, limit: int | None
    ) -> AsyncIterator[Job]:
        """Follow `pagination_key` until it is null (or `limit` jobs were yielded)."""
        count = 0
        while limit is None or count < limit:
            body = await self._call("POST", path, body=request)
            page = msgspec.json.decode(body, type=ListJobsResponse)
            for job in page.jobs:
                if limit is not None and count >= limit:
                    return
                count += 1
                yield job
            if page.pagination_key is None:
                return
            request = msgspec.structs.replace(request, pagination_key=page.pagination_key)


def _side(admin: bool) -> str:
    """The route family: `admin` (anyone's jobs) or `user` (the caller's)."""
    return "admin" if admin else "user"
