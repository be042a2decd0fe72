"""The job store: the domain operations every backend implements, with time passed in.

Nothing here is SQLite-specific. A backend (SQLite now, PostgreSQL later) implements
`JobStore` and runs the same contract suite in `tests/store/`. Every status change is a
guarded transition: it names the attempt it belongs to and applies only if the job is still
in the state that attempt left it in, so a late or duplicate writer changes nothing.

The transitions (each guarded in the dialect's SQL):

    PENDING     -> DEQUEUED (claim) | FAILED (cancel, unknown job type)
    DEQUEUED    -> IN_PROGRESS (start) | PENDING (requeue, rescue) | FAILED (finish, cancel)
    IN_PROGRESS -> SUCCEEDED | FAILED (finish) | PENDING (requeue, rescue)
    SUCCEEDED, FAILED: never change again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import msgspec

from ..models import Attempt, Job, JobStatus
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
    """What the rescuer did with a job whose worker was lost."""

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
    come first (claimed ones, and PENDING ones claimable now that were queued before it)."""

    status: JobStatus
    job_type: str
    run_after: float
    ahead: int


class InvalidPosition(Exception):
    """The pagination position does not name a job of this list."""


class JobStore(Protocol):
    """The durable queue's operations."""

    # Called after each committed write with the ids of the jobs it changed.
    on_change: Callable[[Iterable[str]], None]

    async def open(self) -> None:
        """Connect and migrate the schema to the newest version."""
        ...

    async def close(self) -> None:
        """Flush pending writes and disconnect."""
        ...

    async def idle(self) -> None:
        """Return once every write queued so far (and by tasks ready to run) is applied:
        the seam tests await instead of sleeping for a write to land."""
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

    async def rescue(self, rescue: Rescue) -> list[Rescued]:
        """Requeue (or fail, past max_attempts) jobs whose lease expired before
        `rescue.horizon`; requeued jobs wait their back-off from `rescue.now`."""
        ...

    async def recover(self, now: float, job_types: list[str]) -> list[Rescued]:
        """At startup, requeue what the dead process held as suspects of its death.

        Only jobs of `job_types` (those whose workers ran inside that process) count: jobs
        held by workers outside jobd may still be running, and are left to their lease.
        A job held beside others is refunded its attempt (it may be innocent). A job that
        was already a suspect ran alone (see `claim_suspect`), so it is charged, and fails
        once its attempts are used up.
        """
        ...

    async def claim_suspect(self, claim: Claim) -> ClaimedJob | None:
        """Claim the oldest waiting suspect of any type, to run alone."""
        ...

    async def clear_suspect(self, session_id: str) -> None:
        """The job ran alone without taking jobd down: it is no longer a suspect."""
        ...

    async def count_suspects(self) -> int:
        """Unfinished suspects."""
        ...

    async def maintain(self) -> None:
        """Periodic housekeeping the backend needs (SQLite: checkpoint and truncate the WAL)."""
        ...

    async def count_waiting(self, job_type: str, now: float, cap: int) -> int:
        """Jobs of a type claimable at `now`, counted up to `cap` (enough to decide scaling)."""
        ...

    async def waiting_by_type(self) -> dict[str, int]:
        """All PENDING jobs per type, including those backing off."""
        ...

    async def progress(self, lease: Lease, info: str, fraction: float | None) -> bool:
        """Show progress on a held IN_PROGRESS job."""
        ...

    async def cancel(self, session_id: str, info: str, now: float) -> CancelOutcome:
        """End a waiting job FAILED with `info`; mark a running one for cooperative cancel."""
        ...

    async def batch_counts(self, batch_id: str) -> dict[JobStatus, int]:
        """How many of a batch's jobs are in each status."""
        ...

    async def workflow(self, session_id: str, limit: int) -> list[Job]:
        """The chain a job belongs to: its root and every job launched from it, in order."""
        ...

    async def records_mentioning(self, text: str, limit: int) -> list[NewRecord]:
        """Simulated registry/provenance records with the id `text` or whose data mentions it."""
        ...

    async def fail_unknown_types(self, known: list[str], info: str, now: float) -> list[str]:
        """End FAILED every unfinished job whose job type is not in `known` (no pool will
        ever run it); `info` may contain `{job_type}`. Returns their ids."""
        ...

    async def prune(self, prune: Prune) -> Pruned:
        """Delete finished jobs older than `prune.before`, with the records they made.

        A batch or workflow (a root job and every job launched from it) is deleted as a
        whole in one transaction, and only when every job of it finished before
        `prune.before`; an unfinished job is never deleted.
        """
        ...

    async def secret(self, name: str) -> str:
        """A random secret that survives restarts, created on first use."""
        ...

    # -- scheduling and flow control (issue 14) ---------------------------------------------

    async def launch_once(self, launch: KeyedLaunch) -> LaunchOutcome:
        """Insert a job as PENDING with its info, unless its key already made one.

        In one transaction: forget keys that expired before `key.now`; insert the key
        (unique per user and key); if it was there, launch nothing and return the job it
        made. Two racing launches with one key never both launch.
        """
        ...

    async def claim_flow(self, flow: FlowClaim) -> FlowClaimed:
        """`claim`, unless the type is paused, and no more than its start windows allow.

        In one transaction: a paused type claims nothing and its claimable jobs get
        `paused_info`; otherwise at most what is left of the fixed one-second and one-minute
        windows (counted in the database, so every node shares them) is claimed, the
        windows count it, and claimable jobs left behind get `limited_info`.
        """
        ...

    async def set_paused(self, pause: Pause) -> list[str]:
        """Pause or resume a type (durably); returns the waiting jobs whose info changed.

        Pausing gives its claimable PENDING jobs `info`; resuming clears that info again.
        """
        ...

    async def paused_types(self) -> list[str]:
        """The job types paused now, sorted."""
        ...

    async def fire_schedule(self, fire: ScheduleFire) -> bool:
        """Record a schedule's due time and launch its job, once: False if it was recorded."""
        ...

    async def last_fires(self) -> dict[str, LastFire]:
        """Each schedule's latest recorded due time."""

    async def queue_place(self, session_id: str, now: float) -> QueuePlace | None:
        """Where a job stands in its type's queue at `now` (None: no such job)."""
        ...

    async def attempts(self, session_id: str) -> list[Attempt]:
        """A job's attempts, oldest first, as recorded with its status changes."""
        ...
