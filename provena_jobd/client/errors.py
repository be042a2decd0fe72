"""The client's exceptions, one per kind of failure, each carrying the server's `detail`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from ..errors import JobdError

if TYPE_CHECKING:
    from ..models import Job

NOT_FOUND = "Item was not found."


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
    """jobd answered with an error status and a `{"detail": ...}` body.

    `from_jobd` is False for an answer jobd does not give (a 404: jobd has every route this
    client calls; a body that is not jobd's JSON): the URL reaches another server, or a path
    under jobd's. Its message then says so, in one line, never the page that came back.
    """

    from_jobd = True


class BadRequest(ResponseError):
    """400: jobd refused the request (its `detail` says why)."""


class NotFound(BadRequest):
    """400 "Item was not found.": no job has that session id."""


class Unauthorized(ResponseError):
    """401: no valid credentials, or the job or batch belongs to someone else."""


class Forbidden(ResponseError):
    """403: the credentials lack a role the route needs."""


class Conflict(ResponseError):
    """409: the worker's attempt no longer holds the job (worker protocol), or a launch's
    idempotency key was already used for a different launch."""


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


def refusal(
    url: str, request: str, status: int, reason: str, content_type: str, body: bytes
) -> ResponseError:
    """The exception for an answer to `request` (`GET /admin/pool`) from `url` that is an
    error or not JSON: as `error_for`, or, for an answer jobd does not give, one saying `url`
    does not look like jobd (with `from_jobd` False)."""
    error = error_for(status, body)
    try:
        answer = msgspec.json.decode(body)
    except msgspec.DecodeError:
        answer = None
    if 400 <= status != 404 and isinstance(answer, dict) and "detail" in answer:
        return error
    what = "" if answer is not None else f" ({content_type or 'no content type'}, not JSON)"
    message = (
        f"{url} does not look like a jobd server: {request} answered {status} "
        f"{' '.join(reason.split())[:80]}{what}"
    )
    refused = type(error)(message, status, error.detail)
    refused.from_jobd = False
    return refused
