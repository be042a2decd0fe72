"""One exception tree for jobd; each class's docstring is its default message.

    JobdError
    ├── ConfigError          the configuration cannot be used (startup, one clear line)
    ├── StorageError         the database could not do what was asked
    ├── BackupError          `jobd backup` could not make its copy; nothing was written
    ├── Unauthenticated      401: no acceptable identity; the message is the `detail`
    ├── NotAuthorised        401: the caller may not see this; the message is the `detail`
    └── ApiError             a request is refused; carries the HTTP status and `detail`
        ├── NotFound         400 "Item was not found." (the reference's not-found)
        ├── BadRequest       400 with a reason
        ├── LinkExpired      403: a report link that is not signed here or has expired
        ├── Conflict         409: a worker's attempt no longer holds its job
        ├── UnsupportedMediaType  415: the body is not JSON
        └── RequestInvalid   422 with a pydantic-style list of problems

    ValueError
    └── PayloadInvalid       a payload or result does not fit its sub type's model

Handlers signal outcomes with `RetryLater` (a transient failure: requeue with back-off) and
`JobFailed` (a clean failure whose message becomes the job's `info`).
The mapping of these to HTTP responses lives in `provena_jobd.http` (errors.py, auth.py).

Kept beside their one user, as private signals that never leave it: `coercion.Invalid`
(carries typed problem lists), `queue.store.InvalidPosition` (the store's), and the client's
own tree in `client.py` (`JobdClientError`, what a caller of the HTTP API sees), with
`cli.bulk.PartlyLaunched` under it.
"""

from __future__ import annotations

from typing import Any


class JobdError(Exception):
    """Something went wrong in jobd."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        """The human-readable message."""
        return str(self.args[0])


class ConfigError(JobdError):
    """The configuration is not valid."""


class StorageError(JobdError):
    """The job store failed."""


class BackupError(JobdError):
    """The backup could not be made; nothing was written at the target path."""


class Unauthenticated(JobdError):
    """The request carries no acceptable identity; the message is the `detail`."""


class NotAuthorised(JobdError):
    """The caller may not see this; the message is the reference's `detail`."""


class ApiError(JobdError):
    """The request was refused."""

    status = 400

    def __init__(self, detail: Any = None) -> None:
        super().__init__(None if detail is None else str(detail))
        self.detail: Any = detail if detail is not None else self.message


class NotFound(ApiError):
    """Item was not found."""

    status = 400


class BadRequest(ApiError):
    """Bad request."""

    status = 400


class LinkExpired(ApiError):
    """This report link is invalid or has expired; generate the report again."""

    status = 403


class Conflict(ApiError):
    """This attempt no longer holds the job."""

    status = 409


class UnsupportedMediaType(ApiError):
    """Unsupported Content-Type: send application/json."""

    status = 415


class RequestInvalid(ApiError):
    """Request validation failed."""

    status = 422


class PayloadInvalid(ValueError):
    """A payload or result does not fit its sub type's model; the message names the field."""


class RetryLater(Exception):
    """Raised by a handler for a transient failure: the job is retried after a back-off."""


class JobFailed(Exception):
    """Raised by a handler to fail its job with `Job failed, err: <message>.` as `info`."""
