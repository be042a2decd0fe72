"""The values the store's operations take and return: new jobs, claims, finishes, leases,
pages, and the rest (the operations themselves are `queue/store.py`'s `JobStore`)."""

from __future__ import annotations

from typing import Any

import msgspec

from ..models import Job, JobStatus
from .backoff import backoff_s


class NewJob(msgspec.Struct, frozen=True, kw_only=True):
    """A job to insert as PENDING."""

    session_id: str
    created_timestamp: int
    username: str
    batch_id: str | None
    new_batch: bool
    job_type: str
    job_sub_type: str
    payload: bytes
    max_attempts: int
    run_after: float
    parent_session_id: str | None = None
    retry_of: str | None = None
    info: str | None = None  # what a fetch says while it waits (a delayed job's run time)


class NewRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A record a handler registered or lodged in the simulated registry/provenance store."""

    record_id: str
    kind: str
    session_id: str
    username: str
    data: dict[str, Any]
    created: float


class ClaimedJob(msgspec.Struct, frozen=True, kw_only=True):
    """A job a worker now holds (DEQUEUED) on one attempt."""

    session_id: str
    created_timestamp: int
    username: str
    batch_id: str | None
    job_type: str
    job_sub_type: str
    payload: bytes
    attempt: int
    max_attempts: int
    # The store's mark from the claim, for `JobStore.start_at_once`; None: start must wait.
    claim_mark: int | None = None


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """Ask for up to `limit` waiting jobs of one type for one worker."""

    job_type: str
    limit: int
    worker_id: str
    now: float
    lease_expires_at: float


class Finish(msgspec.Struct, frozen=True, kw_only=True):
    """End an attempt SUCCEEDED or FAILED; what the handler launched and recorded is
    committed with it, and only if the attempt still holds the job."""

    session_id: str
    attempt: int
    status: JobStatus
    info: str | None
    result: bytes | None
    now: float
    launches: list[NewJob] = []
    records: list[NewRecord] = []


class Requeue(msgspec.Struct, frozen=True, kw_only=True):
    """Return a held job to PENDING; `refund` gives the attempt back (graceful shutdown).

    A job whose cancel was recorded while it ran is never requeued: it ends FAILED at `now`
    with the cancel's words (`messages.CANCELLED_RUNNING`) instead.
    """

    session_id: str
    attempt: int
    info: str | None
    run_after: float
    now: float
    refund: bool = False


class Lease(msgspec.Struct, frozen=True):
    """A held job, identified by its attempt."""

    session_id: str
    attempt: int


class Backoff(msgspec.Struct, frozen=True, kw_only=True):
    """Exponential retry back-off as numbers a backend's SQL can use: after attempt n a job
    waits `min(max_s, base_s * 2 ** (n - 1))` seconds (0 with `base_s` 0)."""

    base_s: float = 0.0
    max_s: float = 0.0

    def after(self, attempt: int) -> float:
        """Seconds to wait after `attempt` attempts."""
        return backoff_s(attempt, self.base_s, self.max_s)


NO_BACKOFF = Backoff()


class Rescue(msgspec.Struct, frozen=True, kw_only=True):
    """Requeue (or fail) jobs whose lease expired before `horizon`; `now` stamps the change."""

    now: float
    horizon: float
    backoff: Backoff = NO_BACKOFF


class Rescued(msgspec.Struct, frozen=True, kw_only=True):
    """What the rescuer did with a job whose worker was lost: requeued it (PENDING), or
    ended it (FAILED: out of attempts, or cancelled while it ran)."""

    session_id: str
    job_type: str
    status: JobStatus
    worker_id: str | None = None  # who held it (with several nodes: which node)


class ListScope(msgspec.Struct, frozen=True, kw_only=True):
    """Which jobs a list walks: one user's, one batch's, or everyone's, optionally narrowed
    by status, type, sub type and a text `search` (case-insensitive for ASCII letters, in
    the session id, username, sub type, batch id, info and payload JSON); with
    `group_batches`, a batch is one entry, its newest job among those the filters keep."""

    username: str | None = None
    batch_id: str | None = None
    status: JobStatus | None = None
    job_type: str | None = None
    job_sub_type: str | None = None
    search: str | None = None
    group_batches: bool = False

    def filters(self) -> dict[str, Any]:
        """The narrowing fields that are set (a pagination key is valid only with these)."""
        fields = ("status", "job_type", "job_sub_type", "search", "group_batches")
        return {name: getattr(self, name) for name in fields if getattr(self, name)}


class Position(msgspec.Struct, frozen=True):
    """Where the previous page ended: the last job's id and creation second."""

    session_id: str
    created_timestamp: int


class Page(msgspec.Struct, frozen=True):
    """A page of jobs, newest first; `more` is true when another page follows."""

    jobs: list[Job]
    more: bool


class CancelOutcome(msgspec.Struct, frozen=True):
    """What a cancel request found: the status before it, and whether it ended the job now."""

    status: JobStatus | None
    ended: bool


class Prune(msgspec.Struct, frozen=True, kw_only=True):
    """Delete up to about `limit` jobs that finished before `before`, oldest first.

    `after` is where the previous pass of this sweep stopped ((finished_timestamp, seq) of
    the last job it looked at), so jobs held back by an unfinished batch mate are not looked
    at again and again.
    """

    before: float
    limit: int
    after: tuple[float, int] | None = None


class Pruned(msgspec.Struct, frozen=True, kw_only=True):
    """What one prune pass deleted, and where the next pass of the sweep starts."""

    jobs: int
    records: int
    batches: int
    after: tuple[float, int] | None  # None: the sweep reached the end


class LaunchKey(msgspec.Struct, frozen=True, kw_only=True):
    """An idempotency key: kept with the launch it made until `expires_at`."""

    username: str
    key: str
    fingerprint: str  # digest of the request: the same key with another request conflicts
    now: float  # keys that expired before this are forgotten first
    expires_at: float


class KeyedLaunch(msgspec.Struct, frozen=True, kw_only=True):
    """One job to launch, at most once per idempotency key, with the info it waits with."""

    job: NewJob
    info: str | None = None  # e.g. when a delayed job will run
    key: LaunchKey | None = None


class LaunchOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """The job a keyed launch made now (`launched`) or made earlier with the same key."""

    session_id: str
    batch_id: str | None
    fingerprint: str | None
    launched: bool


class StartLimits(msgspec.Struct, frozen=True, kw_only=True):
    """At most this many jobs of a type claimed per second and per minute (None: no limit)."""

    per_s: int | None = None
    per_min: int | None = None


class FlowClaim(msgspec.Struct, frozen=True, kw_only=True):
    """A claim that respects the job type's pause and start limits, cluster-wide.

    `paused_info` and `limited_info` are shown on the waiting jobs it holds back.
    """

    claim: Claim
    limits: StartLimits = StartLimits()
    paused_info: str = ""
    limited_info: str = ""


class FlowClaimed(msgspec.Struct, frozen=True, kw_only=True):
    """What a flow claim got; why it got fewer than asked; when a limit lets more through."""

    jobs: list[ClaimedJob]
    paused: bool = False
    limited: bool = False
    retry_at: float | None = None  # when the exhausted start window ends


class Pause(msgspec.Struct, frozen=True, kw_only=True):
    """Pause (or resume) claiming a job type; `info` is shown on its waiting jobs meanwhile."""

    job_type: str
    paused: bool
    info: str
    now: float


class ScheduleFire(msgspec.Struct, frozen=True, kw_only=True):
    """One due time of a periodic schedule: the job it launched, or None if it was skipped."""

    schedule: str
    due_at: float
    job: NewJob | None


class LastFire(msgspec.Struct, frozen=True, kw_only=True):
    """The latest due time a schedule has fired (or skipped), and the job it launched."""

    due_at: float
    session_id: str | None


class QueuePlace(msgspec.Struct, frozen=True, kw_only=True):
    """Where a waiting job stands: not claimable before `run_after`; `ahead` jobs of its type
    come first (claimed ones, and PENDING ones claimable now that were queued before it);
    `attempted`: it was claimed at least once (a refunded attempt included); `paused`: its
    type is paused."""

    status: JobStatus
    job_type: str
    run_after: float
    ahead: int
    attempted: bool
    paused: bool = False


class InvalidPosition(Exception):
    """The pagination position does not name a job of this list."""
