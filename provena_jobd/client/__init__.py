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
                             (`from_jobd` False: the answer was not jobd's, see errors.py)
        ├── BadRequest       400
        │   └── NotFound     400 "Item was not found." (the reference's not-found)
        ├── Unauthorized     401
        ├── Forbidden        403
        ├── Conflict         409: a worker's attempt no longer holds its job, or an
        │                    idempotency key was used for another launch
        ├── ValidationFailed 422, `detail` is the pydantic-style list of problems
        └── ServerError      5xx

`Job.payload` and `Job.result` are raw JSON (`msgspec.Raw`), as on the server: decode them
with `job_payload(job)` and `job_result(job)`.
"""

from __future__ import annotations

from ..models import MAX_WAIT_S
from ..settings import DEFAULT_URL
from .errors import (
    NOT_FOUND,
    BadRequest,
    Conflict,
    ConnectionFailed,
    Forbidden,
    JobdClientError,
    NotFound,
    ResponseError,
    ServerError,
    Unauthorized,
    ValidationFailed,
    WaitTimedOut,
    describe_detail,
    error_for,
)
from .events import EventStream
from .jobs import JobdClient, is_finished, job_payload, job_result

__all__ = [
    "DEFAULT_URL",
    "MAX_WAIT_S",
    "NOT_FOUND",
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
    "describe_detail",
    "error_for",
    "is_finished",
    "job_payload",
    "job_result",
]
