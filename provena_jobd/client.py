"""An async Python client for jobd (and Provena's Job API), returning the server's own models.

    async with JobdClient("http://127.0.0.1:8421") as jobd:
        launched = await jobd.launch("EMAIL", "EMAIL_WAKE_UP", {})
        job = await jobd.wait(launched.session_id, timeout_s=30)
        print(job.status, job_result(job))

Every error it raises is a `JobdClientError` (itself a `provena_jobd.errors.JobdError`):

    JobdClientError          `status` (None when jobd never answered) and `detail`
    ├── ConnectionFailed     jobd could not be reached, or did not answer in time
    ├── WaitTimedOut         `wait` gave up before the job finished; `job` is the last seen
    └── ResponseError        jobd refused the request; `detail` is its `{"detail": ...}`
        ├── BadRequest       400
        │   └── NotFound     400 "Item was not found." (the reference's not-found)
        ├── Unauthorized     401
        ├── Forbidden        403
        ├── Conflict         409: a worker's attempt no longer holds its job
        ├── ValidationFailed 422, `detail` is the pydantic-style list of problems
        └── ServerError      5xx

`Job.payload` and `Job.result` are raw JSON (`msgspec.Raw`), as on the server: decode them
with `job_payload(job)` and `job_result(job)`.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import aiohttp
import msgspec

from .errors import JobdError
from .models import (
    TERMINAL_STATUSES,
    AdminListBatchRequest,
    AdminListJobsRequest,
    BatchSummary,
    BatchSummaryRequest,
    Job,
    JobResponse,
    LaunchJobRequest,
    LaunchJobResponse,
    ListBatchRequest,
    ListJobsRequest,
    ListJobsResponse,
    RetryResponse,
    WorkflowResponse,
)

if TYPE_CHECKING:  # the worker modules are imported only by `pool()`: a quicker `jobd` command
    from .flow_control import PausedResponse
    from .workers.pool import PoolsResponse
    from .workers.scheduler import SchedulesResponse

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8421"
MAX_WAIT_S = 60.0  # the server's cap on one long-polling fetch
NOT_FOUND = "Item was not found."

__all__ = [
    "DEFAULT_URL",
    "BadRequest",
    "Conflict",
    "ConnectionFailed",
    "EventStream",
    "Forbidden",
    "JobdClient",
    "JobdClientError",
    "NotFound",
    "ResponseError",
    "ServerError",
    "Unauthorized",
    "ValidationFailed",
    "WaitTimedOut",
    "job_payload",
    "job_result",
]


# -- errors ------------------------------------------------------------------------------------


class JobdClientError(JobdError):
    """A jobd request did not succeed."""

    def __init__(self, message: str, status: int | None = None, detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail: Any = message if detail is None else detail


class ConnectionFailed(JobdClientError):
    """jobd could not be reached, or did not answer in time."""


class WaitTimedOut(JobdClientError):
    """A job did not finish within the time `wait` was given."""

    def __init__(self, message: str, job: Job) -> None:
        super().__init__(message)
        self.job = job


class ResponseError(JobdClientError):
    """jobd answered with an error status and a `{"detail": ...}` body."""


class BadRequest(ResponseError):
    """400: jobd refused the request (its `detail` says why)."""


class NotFound(BadRequest):
    """400 "Item was not found.": no job has that session id."""


class Unauthorized(ResponseError):
    """401: no valid credentials, or the job or batch belongs to someone else."""


class Forbidden(ResponseError):
    """403: the credentials lack a role the route needs."""


class Conflict(ResponseError):
    """409: the worker's attempt no longer holds the job (worker protocol); stop working on it."""


class ValidationFailed(ResponseError):
    """422: the request did not validate; `detail` lists the problems with their `loc`."""


class ServerError(ResponseError):
    """5xx: jobd failed unexpectedly."""


def describe_detail(detail: Any) -> str:
    """A server `detail` as one line: the message, or `loc: msg` pairs for a 422 list."""
    if isinstance(detail, list):
        parts = []
        for problem in detail:
            if isinstance(problem, dict) and "msg" in problem:
                loc = ".".join(str(part) for part in problem.get("loc", []))
                parts.append(f"{loc}: {problem['msg']}" if loc else str(problem["msg"]))
            else:
                parts.append(str(problem))
        return "; ".join(parts)
    return " ".join(str(detail).split())


def error_for(status: int, body: bytes) -> ResponseError:
    """The exception for an error response, carrying the server's `detail`."""
    detail: Any
    try:
        decoded = msgspec.json.decode(body)
        detail = decoded["detail"] if isinstance(decoded, dict) and "detail" in decoded else decoded
    except msgspec.DecodeError:
        detail = body.decode("utf-8", "replace").strip() or f"HTTP {status}"
    kind: type[ResponseError] = ResponseError
    if status == 400:
        kind = NotFound if detail == NOT_FOUND else BadRequest
    elif status == 401:
        kind = Unauthorized
    elif status == 403:
        kind = Forbidden
    elif status == 409:
        kind = Conflict
    elif status == 422:
        kind = ValidationFailed
    elif status >= 500:
        kind = ServerError
    return kind(describe_detail(detail), status, detail)


# -- helpers -----------------------------------------------------------------------------------


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


# -- the client --------------------------------------------------------------------------------


class JobdClient:
    """An async client for one jobd; use it with `async with`, or call `close()`."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout_s: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._headers = {"Accept": "application/json", "User-Agent": "jobd-client"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._session: aiohttp.ClientSession | None = None
        self._streams: set[EventStream] = set()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close open event streams and the HTTP session; the client can be used again."""
        for stream in builtins.list(self._streams):
            await stream.aclose()
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

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
    ) -> LaunchJobResponse:
        """Launch a job; `new_batch` starts a batch with it, `batch_id` adds it to one."""
        request = LaunchJobRequest(
            job_type=job_type,
            job_sub_type=job_sub_type,
            job_payload=dict(payload or {}),
            username=username,
            request_batch_id=new_batch,
            add_to_batch=batch_id,
        )
        body = await self._call("POST", "/jobs/admin/launch", body=request)
        return msgspec.json.decode(body, type=LaunchJobResponse)

    async def fetch(self, session_id: str, *, admin: bool = False, wait_s: float = 0.0) -> Job:
        """One job; with `wait_s` (at most 60) jobd answers once it finishes or after that long."""
        params = {"session_id": session_id}
        if wait_s > 0:
            params["wait_s"] = f"{min(wait_s, MAX_WAIT_S):g}"
        body = await self._call(
            "GET",
            f"/jobs/{_side(admin)}/fetch",
            params=params,
            timeout_s=self.timeout_s + min(wait_s, MAX_WAIT_S),
        )
        return msgspec.json.decode(body, type=JobResponse).job

    async def wait(
        self, session_id: str, *, timeout_s: float | None = None, admin: bool = False
    ) -> Job:
        """The job once it has finished (long polls, no busy polling); `WaitTimedOut` if not
        finished within `timeout_s` (None: wait as long as it takes)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while True:
            step = MAX_WAIT_S if deadline is None else min(MAX_WAIT_S, deadline - loop.time())
            job = await self.fetch(session_id, admin=admin, wait_s=max(step, 0.0))
            if is_finished(job):
                return job
            if deadline is not None and loop.time() >= deadline:
                raise WaitTimedOut(
                    f"job {session_id} did not finish within {timeout_s:g} s "
                    f"(it is {job.status.value})",
                    job,
                )

    async def list(
        self,
        *,
        admin: bool = False,
        username: str | None = None,
        page_size: int = 100,
        limit: int | None = None,
    ) -> AsyncIterator[Job]:
        """The caller's jobs, newest first, fetched page by page as you iterate.

        `admin` lists everyone's jobs; `username` (admin) only that user's; `limit` stops after
        that many jobs.
        """
        request: msgspec.Struct
        if admin or username is not None:
            request = AdminListJobsRequest(username_filter=username, limit=page_size)
            path = "/jobs/admin/list"
        else:
            request = ListJobsRequest(limit=page_size)
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
    ) -> AsyncIterator[Job]:
        """A batch's jobs, newest first, fetched page by page as you iterate."""
        request: msgspec.Struct
        if admin or username is not None:
            request = AdminListBatchRequest(
                batch_id=batch_id, username_filter=username, limit=page_size
            )
            path = "/jobs/admin/list_batch"
        else:
            request = ListBatchRequest(batch_id=batch_id, limit=page_size)
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
        from .workers.pool import PoolsResponse

        return msgspec.json.decode(await self._call("GET", "/admin/pool"), type=PoolsResponse)

    async def schedules(self) -> SchedulesResponse:
        """The periodic schedules with their next run times (issue 14)."""
        from .workers.scheduler import SchedulesResponse

        body = await self._call("GET", "/admin/schedules")
        return msgspec.json.decode(body, type=SchedulesResponse)

    async def paused(self) -> PausedResponse:
        """The job types paused now."""
        from .flow_control import PausedResponse

        return msgspec.json.decode(await self._call("GET", "/admin/paused"), type=PausedResponse)

    async def set_paused(self, job_type: str, paused: bool) -> PausedResponse:
        """Pause or resume a job type (admin); the paused types afterwards."""
        from .flow_control import PausedResponse

        path = "/admin/pause" if paused else "/admin/resume"
        body = await self._call("POST", path, params={"job_type": job_type})
        return msgspec.json.decode(body, type=PausedResponse)

    def events(self) -> EventStream:
        """Jobs as they change (the caller's; an admin's: everyone's), from the event stream.

        `async with client.events() as events:` guarantees every change after it is entered
        is seen; `async for job in events` then yields them until jobd stops.
        """
        return EventStream(self)

    # -- plumbing ------------------------------------------------------------------------------

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

    def session(self) -> aiohttp.ClientSession:
        """The HTTP session, created on first use (inside the running event loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers)
        return self._session

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: msgspec.Struct | None = None,
        timeout_s: float | None = None,
    ) -> bytes:
        """Send one request; the body of a 2xx answer, or the exception for an error."""
        data = None if body is None else msgspec.json.encode(body)
        headers = None if body is None else {"Content-Type": "application/json"}
        timeout = aiohttp.ClientTimeout(total=timeout_s or self.timeout_s)
        try:
            async with self.session().request(
                method,
                self.url + path,
                params=params,
                data=data,
                headers=headers,
                timeout=timeout,
            ) as response:
                content = await response.read()
                status = response.status
        except aiohttp.ClientError as exc:
            raise ConnectionFailed(f"cannot reach jobd at {self.url}: {_reason(exc)}") from exc
        except TimeoutError as exc:
            raise ConnectionFailed(
                f"jobd at {self.url} did not answer {method} {path} within {timeout.total:g} s"
            ) from exc
        if status >= 400:
            raise error_for(status, content)
        return content

    async def _open_stream(self, path: str) -> aiohttp.ClientResponse:
        """Open a streaming GET (no read timeout); raises as `_call` does."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout_s, sock_read=None)
        try:
            response = await self.session().get(self.url + path, timeout=timeout)
        except aiohttp.ClientError as exc:
            raise ConnectionFailed(f"cannot reach jobd at {self.url}: {_reason(exc)}") from exc
        if response.status >= 400:
            content = await response.read()
            response.release()
            raise error_for(response.status, content)
        return response


def _side(admin: bool) -> str:
    """The route family: `admin` (anyone's jobs) or `user` (the caller's)."""
    return "admin" if admin else "user"


def _reason(error: BaseException) -> str:
    """An aiohttp error as a short phrase."""
    if isinstance(error, aiohttp.ClientConnectorError):
        return error.strerror or str(error.os_error)
    return str(error) or type(error).__name__


class EventStream:
    """Server-sent job changes from `GET /jobs/user/events`, as `Job`s; an async iterator."""

    def __init__(self, client: JobdClient) -> None:
        self._client = client
        self._response: aiohttp.ClientResponse | None = None
        self._buffer = b""
        self._lines: builtins.list[bytes] = []
        self._event = ""
        self._data: builtins.list[bytes] = []
        self._ended = False

    async def open(self) -> EventStream:
        """Connect and wait until jobd has subscribed this stream (changes after it are seen)."""
        if self._response is None and not self._ended:
            self._response = await self._client._open_stream("/jobs/user/events")
            self._client._streams.add(self)
            # jobd subscribes, then sends `retry:` and a `: connected` comment as one block.
            while (line := await self._line()) is not None and line:
                pass
        return self

    async def aclose(self) -> None:
        """Disconnect (the iterator then ends)."""
        self._ended = True
        self._client._streams.discard(self)
        if self._response is not None:
            response, self._response = self._response, None
            response.close()

    async def __aenter__(self) -> EventStream:
        return await self.open()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Job:
        """The next changed job; ends when jobd closes the stream (it is shutting down)."""
        await self.open()
        while True:
            line = await self._line()
            if line is None:
                await self.aclose()
                raise StopAsyncIteration
            if line:
                self._field(line)
                continue
            # A blank line dispatches the event gathered so far.
            event, data = self._event or "message", b"\n".join(self._data)
            self._event, self._data = "", []
            if event == "job" and data:
                return msgspec.json.decode(data, type=Job)

    def _field(self, line: bytes) -> None:
        """One `field: value` line of the SSE format; comments (`:`) are skipped."""
        if line.startswith(b":"):
            return
        name, _, value = line.partition(b":")
        value = value.removeprefix(b" ")
        if name == b"event":
            self._event = value.decode()
        elif name == b"data":
            self._data.append(value)

    async def _line(self) -> bytes | None:
        """The next line (without its end of line), or None at the end of the stream.

        Lines are split here rather than with `readline`, which refuses lines over 128 KiB
        (a job with a large payload).
        """
        while not self._lines:
            if self._response is None:
                return None
            try:
                chunk = await self._response.content.readany()
            except aiohttp.ClientError as exc:
                await self.aclose()
                raise ConnectionFailed(f"the event stream broke: {_reason(exc)}") from exc
            if not chunk:
                return None
            *complete, self._buffer = (self._buffer + chunk).split(b"\n")
            self._lines.extend(complete)
        return self._lines.pop(0).removesuffix(b"\r")
