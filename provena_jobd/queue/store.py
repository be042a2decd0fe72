"""The job store: the domain operations every backend implements, with time passed in.

Nothing here is SQLite-specific. A backend (SQLite now, PostgreSQL later) implements
`JobStore` and runs the same contract suite in `tests/store/`. Every status change is a
guarded transition: it names the attempt it belongs to and applies only if the job is still
in the state that attempt left it in, so a late or duplicate writer changes nothing.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from ..models import Job, JobStatus, JobSubType, JobType


class NewJob(msgspec.Struct, frozen=True, kw_only=True):
    """A job to insert as PENDING."""

    session_id: str
    created_timestamp: int
    username: str
    batch_id: str | None
    new_batch: bool
    job_type: JobType
    job_sub_type: JobSubType
    payload: bytes
    max_attempts: int
    run_after: float


class ClaimedJob(msgspec.Struct, frozen=True, kw_only=True):
    """A job a worker now holds (DEQUEUED) on one attempt."""

    session_id: str
    created_timestamp: int
    username: str
    batch_id: str | None
    job_type: JobType
    job_sub_type: JobSubType
    payload: bytes
    attempt: int
    max_attempts: int


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """Ask for up to `limit` waiting jobs of one type for one worker."""

    job_type: JobType
    limit: int
    worker_id: str
    now: float
    lease_expires_at: float


class Finish(msgspec.Struct, frozen=True, kw_only=True):
    """End an attempt SUCCEEDED or FAILED."""

    session_id: str
    attempt: int
    status: JobStatus
    info: str | None
    result: bytes | None
    now: float


class Requeue(msgspec.Struct, frozen=True, kw_only=True):
    """Return a held job to PENDING; `refund` gives the attempt back (graceful shutdown)."""

    session_id: str
    attempt: int
    info: str | None
    run_after: float
    refund: bool = False


class Lease(msgspec.Struct, frozen=True):
    """A held job, identified by its attempt."""

    session_id: str
    attempt: int


class Rescued(msgspec.Struct, frozen=True, kw_only=True):
    """What the rescuer did with a job whose worker was lost."""

    session_id: str
    job_type: JobType
    status: JobStatus


class ListScope(msgspec.Struct, frozen=True, kw_only=True):
    """Which jobs a list walks: one user's, one batch's, or everyone's."""

    username: str | None = None
    batch_id: str | None = None


class Position(msgspec.Struct, frozen=True):
    """Where the previous page ended: the last job's id and creation second."""

    session_id: str
    created_timestamp: int


class Page(msgspec.Struct, frozen=True):
    """A page of jobs, newest first; `more` is true when another page follows."""

    jobs: list[Job]
    more: bool


class InvalidPosition(Exception):
    """The pagination position does not name a job of this list."""


class JobStore(Protocol):
    """The durable queue's operations."""

    async def open(self) -> None:
        """Connect and migrate the schema to the newest version."""
        ...

    async def close(self) -> None:
        """Flush pending writes and disconnect."""
        ...

    async def launch(self, jobs: list[NewJob]) -> None:
        """Insert jobs as PENDING (and their new batches) durably, in one transaction."""
        ...

    async def get(self, session_id: str) -> Job | None:
        """One job, or None."""
        ...

    async def batch_owner(self, batch_id: str) -> str | None:
        """The user who created a batch, or None if there is no such batch."""
        ...

    async def list_jobs(self, scope: ListScope, limit: int, after: Position | None) -> Page:
        """A page of the jobs in `scope`, newest first, after `after`.

        Raises InvalidPosition when `after` is not a job of this scope.
        """
        ...

    async def claim(self, claim: Claim) -> list[ClaimedJob]:
        """Move up to `claim.limit` waiting jobs to DEQUEUED for a worker, oldest first."""
        ...

    async def start(self, lease: Lease, info: str, now: float) -> bool:
        """DEQUEUED -> IN_PROGRESS on this attempt; False if the job moved on without us."""
        ...

    async def finish(self, finish: Finish) -> bool:
        """End this attempt; False if it no longer holds the job (nothing is written)."""
        ...

    async def requeue(self, requeue: Requeue) -> bool:
        """Return a held job to PENDING; False if this attempt no longer holds it."""
        ...

    async def extend_leases(self, leases: list[Lease], lease_expires_at: float) -> int:
        """Heartbeat: push the lease of every still-held job forward; how many were held."""
        ...

    async def rescue(self, now: float, everything: bool, backoff: BackoffPolicy) -> list[Rescued]:
        """Requeue (or fail, past max_attempts) jobs whose lease expired before `now`.

        With `everything`, every held job counts as lost: used at startup, when no worker of a
        previous process can still be alive.
        """
        ...

    async def count_waiting(self, job_type: JobType, now: float, cap: int) -> int:
        """Jobs of a type claimable at `now`, counted up to `cap` (enough to decide scaling)."""
        ...

    async def waiting_by_type(self) -> dict[JobType, int]:
        """All PENDING jobs per type, including those backing off."""
        ...


class BackoffPolicy(Protocol):
    """Seconds to wait before attempt `attempt + 1`."""

    def __call__(self, attempt: int) -> float:
        """The back-off after `attempt` attempts."""
        ...
