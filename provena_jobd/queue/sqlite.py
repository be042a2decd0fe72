"""The SQLite backend of the job store: WAL, one group-commit writer, one reader.

This module owns the file (its lock, migrations, both connections) and the writes, each
submitted to the group-commit writer (writer.py; its steps in sqlite_steps.py); every query
is `SqliteReads`' (sqlite_reads.py), run on the read-only connection.

Durability `full` fsyncs the WAL at every commit, so an acknowledged launch survives power
loss. `normal` fsyncs only at checkpoints: nothing is lost if jobd crashes, but the last
commits before a power cut or kernel crash can be.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiosqlite
import msgspec

from ..errors import StorageError
from ..models import JobStatus
from . import sqlite_recovery as recovery
from . import sqlite_steps as steps
from .dbfile import DatabaseLock, real_path, remove_if_created, take_database
from .dialect import migrations
from .sqlite_flow import claim_flow_step, fire_schedule_step, launch_once_step, set_paused_step
from .sqlite_fold import QueuedStart, StartFolder, unfold
from .sqlite_prune import prune_step
from .sqlite_reads import SqliteReads
from .store import (
    CancelOutcome,
    Claim,
    ClaimedJob,
    Finish,
    FlowClaim,
    FlowClaimed,
    KeyedLaunch,
    LaunchOutcome,
    Lease,
    NewJob,
    Pause,
    Prune,
    Pruned,
    Requeue,
    Rescue,
    Rescued,
    ScheduleFire,
)
from .writer import GroupCommitWriter, Step

log = logging.getLogger(__name__)
WRITER_CACHE_KB = 32 * 1024  # the writer connection's page cache, at most

# The writer's routine steps and their rank in a run of them (see `writer.py`): they only add
# jobs, claim them, or change jobs their caller holds by lease (the worker routes refuse the
# jobs jobd runs itself). Starts go before the holder's other writes (a job started at once
# may finish in the same batch), requeues after finishes, claims last (they see what the
# batch launched or requeued). Every other write is a barrier.
ROUTINE_STEPS: dict[Step, int] = {
    steps.insert_jobs: 0,
    launch_once_step: 0,
    steps.start: 1,
    steps.finish: 2,
    steps.progress: 2,
    steps.extend_leases: 2,
    steps.requeue: 3,  # after finishes: a shutdown's requeue must not undo a queued finish
    steps.claim: 4,
    claim_flow_step: 4,
}


def _ignore(session_ids: Iterable[str]) -> None:
    """The default change listener."""


class SqliteStore(SqliteReads):
    """A `JobStore` on one SQLite file: the writes here, the queries in `SqliteReads`."""

    def __init__(self, path: str | Path, durability: str = "full") -> None:
        self.path = str(path)
        self.durability = durability
        self._writer = GroupCommitWriter(self._connect, ROUTINE_STEPS, before_alone=unfold)
        self._folder = StartFolder(self._writer)
        self._secrets: dict[str, str] = {}  # read once (see `secret`)
        self._reader: aiosqlite.Connection | None = None
        self._lock: DatabaseLock | None = None
        # Told the ids of the jobs each committed write changed (the change feed).
        self.on_change: Callable[[Iterable[str]], None] = _ignore

    # -- lifecycle --------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode = WAL")
            synchronous = "FULL" if self.durability == "full" else "NORMAL"
            connection.execute(f"PRAGMA synchronous = {synchronous}")
            connection.execute("PRAGMA busy_timeout = 5000")
            # A commit of hundreds of launches, claims and finishes dirties more pages than
            # SQLite's default 2 MB cache holds; it would then spill them into the WAL
            # mid-transaction, and write some twice. The cache grows only as pages are used.
            connection.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KB}")
            connection.row_factory = sqlite3.Row  # rows are read by column name
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open database {self.path}: {exc}") from None
        return connection

    async def open(self) -> None:
        """Take the database for this process, open the writer, migrate, open the reader."""
        self.path = real_path(self.path)
        lock, existed = take_database(self.path, migrations("sqlite")[-1].version)
        self._lock = lock
        try:
            await self._writer.start()
            await self._writer.call(steps.migrate)
            self._reader = await aiosqlite.connect(self.path, isolation_level=None)
            self._reader.row_factory = sqlite3.Row
            await self._reader.execute("PRAGMA busy_timeout = 5000")
            await self._reader.execute("PRAGMA query_only = 1")
        except sqlite3.Error as exc:
            await self._abandon(existed)
            raise StorageError(f"cannot use database {self.path}: {exc}") from None
        except BaseException:
            await self._abandon(existed)
            raise

    async def _abandon(self, existed: bool) -> None:
        """Close after a failed open; remove the file if this open created it empty."""
        await self.close()
        remove_if_created(self.path, existed)

    async def close(self) -> None:
        """Commit queued writes and close both connections."""
        await self._writer.close()
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    async def maintain(self) -> None:
        """Checkpoint the WAL into the database and truncate it to zero bytes.

        SQLite's automatic checkpoints copy the WAL back but never shrink the file, so a WAL
        that grew (a burst, or a full disk that stopped checkpoints) would keep its size for
        ever; and with the disk full again it could not grow back into the space it freed.
        """
        try:
            await self._writer.call(steps.checkpoint)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot checkpoint {self.path}: {exc}") from None

    async def idle(self) -> None:
        """Wait until the writer has nothing queued or in hand."""
        await self._writer.idle()

    @property
    def writer(self) -> GroupCommitWriter:
        """The group-commit writer (its counters show how well writes batch)."""
        return self._writer

    async def _read(
        self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[Any]:
        """The rows of one query, on the read-only connection (for `SqliteReads`)."""
        reader = self._reader
        if reader is None:
            raise StorageError("the job store is not open")
        return list(await reader.execute_fetchall(sql, parameters))

    # -- launching --------------------------------------------------------------------------

    async def launch(self, jobs: list[NewJob]) -> None:
        """Insert jobs as PENDING, durably."""
        await self._writer.submit(steps.insert_jobs, jobs)
        self.on_change(job.session_id for job in jobs)

    # -- the worker's side ------------------------------------------------------------------

    async def claim(self, claim: Claim) -> list[ClaimedJob]:
        """Claim waiting jobs for a worker."""
        claimed: list[ClaimedJob] = await self._writer.submit(steps.claim, claim)
        if claimed:
            self.on_change(job.session_id for job in claimed)
        return claimed

    async def start(self, lease: Lease, info: str, now: float) -> bool:
        """Mark a held job IN_PROGRESS.

        Returns once the guarded UPDATE is applied, without waiting for its fsync: whether
        the guard held is final then (one writer, in order), and losing this write in a crash
        is harmless. The job is then still DEQUEUED with its lease; when the lease runs out
        it is requeued (or failed after its last attempt) like any job of a lost worker,
        which is what happens to a crash mid-handler anyway. A cancel or rescue applied
        before it makes it return False, so a cancelled job still never starts; one applied
        after it sees IN_PROGRESS. Readers see IN_PROGRESS only once it is committed.
        """
        started: str | None = await self._writer.submit_early(
            steps.start, QueuedStart(info, now, lease), self._start_committed
        )
        return started is not None

    def _start_committed(self, started: str | None) -> None:
        """Tell the change feed once a start is committed (listeners read the job back)."""
        if started is not None:
            self.on_change((started,))

    def start_at_once(self, job: ClaimedJob, info: str, now: float) -> bool:
        """Queue the start of a job claimed here if no barrier write was submitted since its
        claim: then only its claimant's own writes can have touched it, so its guard holds
        (see `writer.py`); a cancel or rescue submitted later is applied after the start."""
        if job.claim_mark is None or job.claim_mark != self._writer.barriers:
            return False
        start = QueuedStart(info, now, Lease(job.session_id, job.attempt))
        self._writer.submit_detached(
            steps.start, start, functools.partial(self._started_at_once, start)
        )
        self._folder.queued(start)
        return True

    def _started_at_once(self, start: QueuedStart, started: str | None) -> None:
        if started is None:  # cannot happen unless the barrier rule is broken: say so loudly
            log.error(
                "the start of job %s (attempt %d), queued at once, did not apply",
                start.lease.session_id,
                start.lease.attempt,
                extra={"action": "start_lost", "session_id": start.lease.session_id},
            )
        elif not start.folded:  # a folded start is told with its finish
            self.on_change((started,))

    async def finish(self, finish: Finish) -> bool:
        """End an attempt (with its start, if that is still queued: `sqlite_fold.py`)."""
        queued = self._folder.fold(finish)
        future = self._writer.submit(steps.finish, queued)
        if queued.start is not None:
            queued.start.folded = True  # only once the finish that writes it is queued
        finished: bool = await future
        if finished:
            self.on_change([finish.session_id, *(job.session_id for job in finish.launches)])
        return finished

    async def requeue(self, requeue: Requeue) -> JobStatus | None:
        """Return a held job to PENDING (FAILED if cancelled while running)."""
        requeued: JobStatus | None = await self._writer.submit(steps.requeue, requeue)
        if requeued is not None:
            self.on_change((requeue.session_id,))
        return requeued

    async def extend_leases(self, leases: list[Lease], lease_expires_at: float) -> int:
        """Heartbeat a set of held jobs."""
        if not leases:
            return 0
        held: int = await self._writer.submit(steps.extend_leases, (leases, lease_expires_at))
        return held

    async def rescue(self, rescue: Rescue) -> list[Rescued]:
        """Requeue or fail jobs whose worker is gone."""
        rescued: list[Rescued] = await self._writer.submit(recovery.rescue, rescue)
        if rescued:
            self.on_change(r.session_id for r in rescued)
        return rescued

    async def recover(self, now: float, job_types: list[str]) -> list[Rescued]:
        """Requeue (or fail) what a dead process held; see `JobStore.recover`."""
        request = (now, frozenset(job_types))
        rescued: list[Rescued] = await self._writer.submit(recovery.recover, request)
        if rescued:
            self.on_change(r.session_id for r in rescued)
        return rescued

    async def claim_suspect(self, claim: Claim) -> ClaimedJob | None:
        """Claim the oldest waiting suspect."""
        claimed: list[ClaimedJob] = await self._writer.submit(recovery.claim_suspect, claim)
        if claimed:
            self.on_change((claimed[0].session_id,))
        return claimed[0] if claimed else None

    async def clear_suspect(self, session_id: str) -> None:
        """No longer a suspect."""
        await self._writer.submit(recovery.clear_suspect, session_id)

    async def progress(self, lease: Lease, info: str, fraction: float | None) -> bool:
        """Show progress on a running job."""
        self._folder.keep(lease.session_id)  # it needs the job IN_PROGRESS first
        shown: bool = await self._writer.submit(steps.progress, (lease, info, fraction))
        if shown:
            self.on_change((lease.session_id,))
        return shown

    async def cancel(self, session_id: str, info: str, now: float) -> CancelOutcome:
        """End a waiting job, or flag a running one."""
        outcome: CancelOutcome = await self._writer.submit(steps.cancel, (session_id, info, now))
        self.on_change((session_id,))
        return outcome

    async def fail_unknown_types(self, known: list[str], info: str, now: float) -> list[str]:
        """Fail unfinished jobs of job types nothing runs any more."""
        failed: list[str] = await self._writer.submit(steps.fail_unknown_types, (known, info, now))
        if failed:
            self.on_change(failed)
        return failed

    async def prune(self, prune: Prune) -> Pruned:
        """Delete old finished batches and workflows whole (see `JobStore.prune`)."""
        pruned: Pruned = await self._writer.submit(prune_step, prune)
        return pruned

    async def secret(self, name: str) -> str:
        """A persistent random secret (kept once read: it never changes, and a write per
        read would be a barrier, see `start_at_once`)."""
        if name not in self._secrets:
            self._secrets[name] = await self._writer.submit(steps.secret, name)
        return self._secrets[name]

    # -- scheduling and flow control (issue 14; the steps are in sqlite_flow) ---------------

    async def launch_once(self, launch: KeyedLaunch) -> LaunchOutcome:
        """Launch unless the idempotency key already did (see `JobStore.launch_once`)."""
        outcome: LaunchOutcome = await self._writer.submit(launch_once_step, launch)
        if outcome.launched:
            self.on_change((outcome.session_id,))
        return outcome

    async def claim_flow(self, flow: FlowClaim) -> FlowClaimed:
        """Claim within the type's pause and start limits; the jobs carry the claim's mark
        (the writer's barrier count when it was submitted) for `start_at_once`."""
        mark = self._writer.barriers
        claimed: FlowClaimed
        claimed, held = await self._writer.submit(claim_flow_step, flow)
        changed = [*(job.session_id for job in claimed.jobs), *held]
        if changed:
            self.on_change(changed)
        if not claimed.jobs:
            return claimed
        jobs = [msgspec.structs.replace(job, claim_mark=mark) for job in claimed.jobs]
        return msgspec.structs.replace(claimed, jobs=jobs)

    async def set_paused(self, pause: Pause) -> list[str]:
        """Pause or resume a job type."""
        changed: list[str] = await self._writer.submit(set_paused_step, pause)
        if changed:
            self.on_change(changed)
        return changed

    async def fire_schedule(self, fire: ScheduleFire) -> bool:
        """Record a due time, launching its job once."""
        fired: bool = await self._writer.submit(fire_schedule_step, fire)
        if fired and fire.job is not None:
            self.on_change((fire.job.session_id,))
        return fired
