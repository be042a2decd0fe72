"""Wire models compatible with Provena's Job API, and the job statuses.

Field names, defaults and nullability follow `ProvenaInterfaces.AsyncJobModels` and
`AsyncJobAPI` so that existing Provena clients work unchanged. jobd adds three fields to a
job (`started_timestamp`, `finished_timestamp`, `attempt`); clients ignore unknown keys.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, ClassVar

import msgspec

from .clock import rounded_to_ms


class JobType(enum.StrEnum):
    """The four job types of the reference; one worker pool each."""

    PROV_LODGE = "PROV_LODGE"
    REGISTRY = "REGISTRY"
    EMAIL = "EMAIL"
    REPORT = "REPORT"


class JobSubType(enum.StrEnum):
    """Every sub type of the reference; each belongs to exactly one job type."""

    PROV_LODGE_WAKE_UP = "PROV_LODGE_WAKE_UP"
    MODEL_RUN_PROV_LODGE = "MODEL_RUN_PROV_LODGE"
    MODEL_RUN_LODGE_ONLY = "MODEL_RUN_LODGE_ONLY"
    MODEL_RUN_BATCH_SUBMIT = "MODEL_RUN_BATCH_SUBMIT"
    LODGE_CREATE_ACTIVITY = "LODGE_CREATE_ACTIVITY"
    LODGE_VERSION_ACTIVITY = "LODGE_VERSION_ACTIVITY"
    MODEL_RUN_UPDATE = "MODEL_RUN_UPDATE"
    MODEL_RUN_UPDATE_LODGE_ONLY = "MODEL_RUN_UPDATE_LODGE_ONLY"
    REGISTRY_WAKE_UP = "REGISTRY_WAKE_UP"
    REGISTER_CREATE_ACTIVITY = "REGISTER_CREATE_ACTIVITY"
    REGISTER_VERSION_ACTIVITY = "REGISTER_VERSION_ACTIVITY"
    EMAIL_WAKE_UP = "EMAIL_WAKE_UP"
    SEND_EMAIL = "SEND_EMAIL"
    GENERATE_REPORT = "GENERATE_REPORT"


SUB_TYPES_BY_JOB_TYPE: dict[JobType, tuple[JobSubType, ...]] = {
    JobType.PROV_LODGE: (
        JobSubType.PROV_LODGE_WAKE_UP,
        JobSubType.MODEL_RUN_PROV_LODGE,
        JobSubType.MODEL_RUN_LODGE_ONLY,
        JobSubType.MODEL_RUN_BATCH_SUBMIT,
        JobSubType.LODGE_CREATE_ACTIVITY,
        JobSubType.LODGE_VERSION_ACTIVITY,
        JobSubType.MODEL_RUN_UPDATE,
        JobSubType.MODEL_RUN_UPDATE_LODGE_ONLY,
    ),
    JobType.REGISTRY: (
        JobSubType.REGISTRY_WAKE_UP,
        JobSubType.REGISTER_CREATE_ACTIVITY,
        JobSubType.REGISTER_VERSION_ACTIVITY,
    ),
    JobType.EMAIL: (JobSubType.EMAIL_WAKE_UP, JobSubType.SEND_EMAIL),
    JobType.REPORT: (JobSubType.GENERATE_REPORT,),
}

JOB_TYPE_OF_SUB_TYPE: dict[JobSubType, JobType] = {
    sub_type: job_type
    for job_type, sub_types in SUB_TYPES_BY_JOB_TYPE.items()
    for sub_type in sub_types
}


class JobStatus(enum.StrEnum):
    """Where a job is in its life."""

    PENDING = "PENDING"
    DEQUEUED = "DEQUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED})
# The longest a fetch waits for its job to finish (`wait_s`); a client waiting longer asks again.
MAX_WAIT_S = 60.0
MAX_SEARCH = 200  # the longest text a list's `search` may be

# The reference worker's fixed `info` strings (provena-job-api.md section 4).
INFO_DEQUEUED = "Job removed from queue ready for processing by worker task."
INFO_IN_PROGRESS = "Job has been dispatched to worker callback and is in progress."
INFO_UNHANDLED = "Callback function raised unhandled exception. Error: {error}."

GSI_STATUS = "ok"
NULL_RAW = msgspec.Raw(b"null")

Limit = Annotated[int, msgspec.Meta(ge=1, le=1000)]
PaginationKey = dict[str, Any]


class Job(msgspec.Struct, kw_only=True):
    """A job as the API returns it: the reference's `JobStatusTable` plus timing fields.

    `payload` and `result` are kept as raw JSON so a fetch never decodes and re-encodes them;
    an absent result is the raw JSON `null` (`NULL_RAW`).
    """

    session_id: str
    created_timestamp: int
    username: str
    batch_id: str | None
    payload: msgspec.Raw
    job_type: str
    job_sub_type: str
    gsi_status: str = GSI_STATUS
    status: JobStatus
    info: str | None
    result: msgspec.Raw
    started_timestamp: float | None = None
    finished_timestamp: float | None = None
    attempt: int = 0
    progress: float | None = None
    parent_session_id: str | None = None
    retry_of: str | None = None


class LaunchJobRequest(msgspec.Struct, kw_only=True):
    """Body of `POST /jobs/admin/launch`; the types are checked against the job catalog."""

    job_type: str
    job_sub_type: str
    job_payload: dict[str, Any]
    username: str | None = None
    request_batch_id: bool = False
    add_to_batch: str | None = None
    # jobd extensions (issue 14), ignored by nothing: a Provena client never sends them.
    idempotency_key: str | None = None  # or the Idempotency-Key header
    not_before: float | None = None  # run no earlier than this Unix time
    delay_s: float | None = None  # run no earlier than this many seconds from now


class LaunchJobResponse(msgspec.Struct):
    """The new job's session id and its batch, if any."""

    session_id: str
    batch_id: str | None
    # Not a field (the body stays the reference's): True only on a `ReplayedLaunch`.
    replayed: ClassVar[bool] = False


class ReplayedLaunch(LaunchJobResponse):
    """A launch answered with the job an earlier launch with the same idempotency key made:
    the same body; the API adds the `Idempotent-Replayed: true` header, from which the
    client returns this type (`replayed` is True): nothing new was launched."""

    replayed: ClassVar[bool] = True

    def __eq__(self, other: object) -> bool:
        """Equal to the first launch's answer with the same body: the same job (a caller's
        `again == first` held before the client told replays apart, and still does)."""
        if not isinstance(other, LaunchJobResponse):
            return NotImplemented
        return (self.session_id, self.batch_id) == (other.session_id, other.batch_id)


class WaitReason(enum.StrEnum):
    """The one reason a job is not running yet."""

    PAUSED = "paused"  # its job type is paused by an operator
    NO_POOL = "no_pool"  # nothing on this jobd runs its job type
    # Its type is run by outside workers (`external = true`) and none has claimed lately.
    NO_WORKER = "no_worker"
    SCHEDULED = "scheduled"  # launched with a delay, never attempted: not before `ready_at`
    BACKING_OFF = "backing_off"  # a failed attempt: not claimable before `ready_at`
    COLD_START = "cold_start"  # no worker is ready; one is provisioning
    # No worker is ready and the pool's last worker processes failed to start (a crash
    # loop): the pool pauses until `ready_at` before it starts the next, or the next is under
    # way, ready about `ready_at` unless it fails too.
    START_FAILING = "start_failing"
    WORKERS_BUSY = "workers_busy"  # every ready worker is full; `ahead` jobs come first
    STARTING = "starting"  # a worker has a free slot: it starts at the next claim


class Waiting(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Why a job waits: a reason, a sentence, and when it may start (epoch seconds)."""

    reason: WaitReason
    message: str
    ready_at: float | None = None
    ahead: int | None = None

    def __post_init__(self) -> None:
        """`ready_at` to the millisecond (it comes from the pools' and the store's clocks)."""
        if self.ready_at is not None:
            self.ready_at = rounded_to_ms(self.ready_at)


class Attempt(msgspec.Struct, kw_only=True):
    """One attempt of a job: when it was claimed, started and ended (epoch seconds), by which
    worker (and node, once there are several), and how it ended: `succeeded`, `failed`,
    `cancelled`, `lease_lost`, `requeued_at_shutdown`, `returned` (handed back before it could
    run: its worker left mid-claim, or its pool held it beyond its reach; `info` says which),
    `crash_suspect`, `retrying` (requeued
    after an error, not before `retry_at`), or null while it runs."""

    attempt: int
    worker_id: str | None
    node: str | None
    claimed_at: float | None
    started_at: float | None
    ended_at: float | None
    outcome: str | None
    info: str | None
    retry_at: float | None


class HistoryResponse(msgspec.Struct):
    """Body of `GET /jobs/{user,admin}/history`: a job's attempts, oldest first."""

    session_id: str
    attempts: list[Attempt]


class JobResponse(msgspec.Struct, omit_defaults=True):
    """Body of a successful fetch; jobd adds `waiting` (why a job that has not started waits,
    see waiting.py) to a fetch of a PENDING or DEQUEUED job."""

    job: Job
    waiting: Waiting | None = None


class ListFilters(msgspec.Struct, kw_only=True):
    """Optional narrowing of a list, applied by the server over every job the caller may see
    (jobd's addition; clients that send none of these get the reference's lists).

    A pagination key is valid only with the filters it was issued for.
    """

    status: JobStatus | None = None
    job_type: str | None = None
    job_sub_type: str | None = None
    # Matched case-insensitively in the session id, username, info and payload; "" is none.
    search: str | None = None
    # One entry per batch (its newest matching job) with the whole batch's counts in `batches`.
    group_batches: bool = False


class ListJobsRequest(ListFilters, kw_only=True):
    """Body of `POST /jobs/user/list`."""

    limit: Limit = 10
    pagination_key: PaginationKey | None = None


class ListBatchRequest(ListFilters, kw_only=True):
    """Body of `POST /jobs/user/list_batch`."""

    batch_id: str
    limit: Limit = 10
    pagination_key: PaginationKey | None = None


class AdminListJobsRequest(ListFilters, kw_only=True):
    """Body of `POST /jobs/admin/list`."""

    username_filter: str | None = None
    limit: Limit = 10
    pagination_key: PaginationKey | None = None


class AdminListBatchRequest(ListFilters, kw_only=True):
    """Body of `POST /jobs/admin/list_batch`."""

    batch_id: str
    username_filter: str | None = None
    limit: Limit = 10
    pagination_key: PaginationKey | None = None


class ListJobsResponse(msgspec.Struct, omit_defaults=True):
    """A page of jobs, newest first; `pagination_key` is null on the last page.

    With `group_batches`, `batches` gives each listed batch's whole counts by status.
    """

    jobs: list[Job]
    pagination_key: PaginationKey | None
    batches: dict[str, dict[str, int]] | None = None


class HealthResponse(msgspec.Struct):
    """Body of `GET /`."""

    message: str = "Health check successful."


class AccessReport(msgspec.Struct):
    """Body of the `/check-access/*` routes."""

    username: str
    email: str | None
    roles: list[str]
    access_token: str


class ErrorResponse(msgspec.Struct):
    """Every error body: a message, or for 422 a list of problems with their `loc`."""

    detail: Any


class RetryResponse(msgspec.Struct):
    """The new job a retry launched (the reference's `RetryJobResponse`)."""

    session_id: str


class BatchSummaryRequest(msgspec.Struct, kw_only=True):
    """Body of `POST /jobs/*/batch_summary`."""

    batch_id: str


class BatchSummary(msgspec.Struct, kw_only=True):
    """A batch's jobs counted by status, without paging through them."""

    batch_id: str
    total: int
    counts: dict[str, int]
    done: bool
    all_succeeded: bool


class WorkflowResponse(msgspec.Struct, kw_only=True):
    """The chain a job belongs to: its root's id and every step, in launch order."""

    session_id: str
    steps: list[Job]
    done: bool
