"""The wire models of the worker protocol (`/jobs/worker/*`), shared by server and client.

A worker outside jobd claims jobs of one type, then names the job by `session_id` and the
`attempt` it was handed in every later call; jobd refuses (409) a call whose attempt no longer
holds the job, so a worker presumed dead cannot overwrite what another attempt did.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

WorkerId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
SessionId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Attempt = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]  # fits the database's integer
MAX_CLAIM = 100
MAX_CLAIM_WAIT_S = 60.0


class ClaimRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`POST /jobs/worker/claim`: up to `n` jobs of `job_type`, waiting up to `wait_s`."""

    job_type: str
    worker_id: WorkerId
    n: Annotated[int, msgspec.Meta(ge=1, le=MAX_CLAIM)] = 1
    wait_s: Annotated[float, msgspec.Meta(ge=0, le=MAX_CLAIM_WAIT_S)] = 0.0


class ClaimedWork(msgspec.Struct, kw_only=True):
    """One claimed job (DEQUEUED), with the fields of the reference's `JobSnsPayload`."""

    session_id: str
    attempt: int
    max_attempts: int
    created_timestamp: int
    username: str
    batch_id: str | None
    job_type: str
    job_sub_type: str
    payload: dict[str, Any]
    lease_expires_at: float


class ClaimResponse(msgspec.Struct, kw_only=True):
    """The jobs claimed (possibly none) and the lease length the worker must heartbeat within."""

    jobs: list[ClaimedWork]
    lease_s: float


class AttemptRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`POST /jobs/worker/heartbeat`: keep holding a job."""

    session_id: SessionId
    attempt: Attempt


class StartRequest(AttemptRequest, forbid_unknown_fields=True, kw_only=True):
    """`POST /jobs/worker/start`: DEQUEUED -> IN_PROGRESS (the reference's info by default)."""

    info: str | None = None


class ProgressRequest(AttemptRequest, forbid_unknown_fields=True, kw_only=True):
    """`POST /jobs/worker/progress`: show what a running job is doing."""

    info: str
    fraction: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None


class FinishRequest(AttemptRequest, forbid_unknown_fields=True, kw_only=True):
    """`POST /jobs/worker/finish`: end the attempt; a SUCCEEDED result must fit the sub type."""

    status: Literal["SUCCEEDED", "FAILED"]
    info: str | None = None
    result: dict[str, Any] | None = None


class ReleaseRequest(AttemptRequest, forbid_unknown_fields=True, kw_only=True):
    """`POST /jobs/worker/release`: give a job back to the queue; its next claim is a new
    attempt, so this one stays fenced off."""

    info: str | None = None
    delay_s: Annotated[float, msgspec.Meta(ge=0, le=86_400)] = 0.0


class LeaseResponse(msgspec.Struct, kw_only=True):
    """The job is still held, until `lease_expires_at` unless heartbeated again."""

    session_id: str
    attempt: int
    lease_expires_at: float
