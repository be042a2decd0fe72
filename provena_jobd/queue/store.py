"""The job store: the domain operations every backend implements, with time passed in.

Nothing here is SQLite-specific. A backend (SQLite now, PostgreSQL later) implements
`JobStore` and runs the same contract suite in `tests/store/`. Every status change is a
guarded transition: it names the attempt it belongs to and applies only if the job is still
in the state that attempt left it in, so a late or duplicate writer changes nothing.

The transitions (each guarded in the dialect's SQL):

    PENDING     -> DEQUEUED (claim) | FAILED (cancel, unknown job type)
    DEQUEUED    -> IN_PROGRESS (start) | PENDING (requeue, rescue) | FAILED (finish, cancel)
    IN_PROGRESS -> SUCCEEDED | FAILED (finish) | PENDING (requeue, rescue)
                   (a cancel recorded on it: never SUCCEEDED, and a requeue or rescue
                   ends it FAILED instead of PENDING)
    SUCCEEDED, FAILED: never change again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from ..models import Attempt, Job, JobStatus
from .store_values import (
    NO_BACKOFF,
    Backoff,
    CancelOutcome,
    Claim,
    ClaimedJob,
    Finish,
    FlowClaim,
    FlowClaimed,
    InvalidPosition,
    KeyedLaunch,
    LastFire,
    LaunchKey,
    LaunchOutcome,
    Lease,
    ListScope,
    NewJob,
    NewRecord,
    Page,
    Pause,
    Position,
    Prune,
    Pruned,
    QueuePlace,
    Requeue,
    Rescue,
    Rescued,
    ScheduleFire,
    StartLimits,
)

__all__ = [
    "NO_BACKOFF",
    "Backoff",
    "CancelOutcome",
    "Claim",
    "ClaimedJob",
    "Finish",
    "FlowClaim",
    "FlowClaimed",
    "InvalidPosition",
    "JobStore",
    "KeyedLaunch",
    "LastFire",
    "LaunchKey",
    "LaunchOutcome",
    "Lease",
    "ListScope",
    "NewJob",
    "NewRecord",
    "Page",
    "Pause",
    "Position",
    "Prune",
    "Pruned",
    "QueuePlace",
    "Requeue",
    "Rescue",
    "Rescued",
    "ScheduleFire",
    "StartLimits",
]


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

    def start_at_once(self, job: ClaimedJob, info: str, now: float) -> bool:
        """Start a job this process claimed without waiting, if the store can tell that the
        start's guard will hold; False (nothing written) means: await `start` instead.

        Only a store with one writer in one process can tell (nothing but the claimant's own
        writes touched the job since its claim); it queues the start, which is committed
        with the next batch, before any later write to the job.
        """
        ...

    async def finish(self, finish: Finish) -> bool:
        """End this attempt; False if it no longer holds the job (nothing is written)."""
        ...

    async def requeue(self, requeue: Requeue) -> JobStatus | None:
        """Return a held job to PENDING, or end it FAILED if its cancel was recorded while it
        ran (it must not run again); the status it was left in, None if this attempt no
        longer holds it (nothing is written)."""
        ...

    async def extend_leases(self, leases: list[Lease], lease_expires_at: float) -> int:
        """Heartbeat: push the lease of every still-held job forward; how many were held."""
        ...

    async def rescue(self, rescue: Rescue) -> list[Rescued]:
        """Requeue (or fail, past max_attempts or if cancelled while running) jobs whose
        lease expired before `rescue.horizon`; requeued jobs wait their back-off from
        `rescue.now`."""
        ...

    async def recover(self, now: float, job_types: list[str]) -> list[Rescued]:
        """At startup, requeue what the dead process held as suspects of its death.

        Only jobs of `job_types` (those whose workers ran inside that process) count: jobs
        held by workers outside jobd may still be running, and are left to their lease.
        A job held beside others is refunded its attempt (it may be innocent). A job that
        was already a suspect ran alone (see `claim_suspect`), so it is charged, and fails
        once its attempts are used up. A job whose cancel was recorded while it ran ends
        FAILED (it must not run again).
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
