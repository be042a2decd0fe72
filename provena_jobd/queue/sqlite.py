"""The SQLite backend of the job store: WAL, one group-commit writer, one reader.

Durability `full` fsyncs the WAL at every commit, so an acknowledged launch survives power
loss. `normal` fsyncs only at checkpoints: nothing is lost if jobd crashes, but the last
commits before a power cut or kernel crash can be.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite
import msgspec

from ..errors import StorageError
from ..models import INFO_DEQUEUED, NULL_RAW, Attempt, Job, JobStatus
from .dbfile import DatabaseLock, real_path, remove_if_created, take_database
from .sql import migrations, queries
from .sqlite_history import attempts
from .sqlite_list import list_sql
from .sqlite_prune import prune_step
from .sqlite_waiting import queue_place
from .store import (
    BackoffPolicy,
    CancelOutcome,
    Claim,
    ClaimedJob,
    Finish,
    InvalidPosition,
    Lease,
    ListScope,
    NewJob,
    NewRecord,
    Page,
    Position,
    Prune,
    Pruned,
    QueuePlace,
    Requeue,
    Rescued,
)
from .writer import GroupCommitWriter

Q = queries("sqlite")

_JOB_COLUMNS = (
    "session_id, created_timestamp, username, batch_id, payload, job_type, job_sub_type, "
    "status, info, result, started_timestamp, finished_timestamp, attempt, "
    "parent_session_id, retry_of, progress"
)
# The chain below a workflow's root, depth-limited so a cycle (impossible by construction)
# could not loop forever.
_WORKFLOW_STEPS = f"""
WITH RECURSIVE down(session_id, depth) AS (
    SELECT ?, 0
    UNION ALL
    SELECT jobs.session_id, down.depth + 1 FROM jobs JOIN down
    ON jobs.parent_session_id = down.session_id WHERE down.depth < 16
)
SELECT {", ".join("jobs." + column.strip() for column in _JOB_COLUMNS.split(","))}
FROM jobs JOIN down USING (session_id) ORDER BY jobs.seq LIMIT ?
"""
_LOST = "Requeued: its worker was lost (lease expired or jobd restarted) on attempt {attempt}."
_GAVE_UP = (
    "Job failed: its worker was lost (lease expired or jobd restarted) on each of "
    "{attempt} attempts; giving up."
)


_SUSPECT = (
    "Requeued: jobd stopped unexpectedly while this job ran beside others (attempt "
    "{attempt}, not counted). It runs again alone first, to see whether it was the cause."
)
_RAN_ALONE = (
    "Requeued: jobd stopped unexpectedly while this job ran alone (attempt {attempt} "
    "counted). It runs alone again."
)
_CULPRIT = (
    "Job failed: jobd stopped unexpectedly each time it ran this job alone "
    "({attempt} attempts), so the job is taken to be the cause."
)


def _ignore(session_ids: Iterable[str]) -> None:
    """The default change listener."""


def _row_to_job(row: Sequence[Any]) -> Job:
    return Job(
        session_id=row[0],
        created_timestamp=row[1],
        username=row[2],
        batch_id=row[3],
        payload=msgspec.Raw(row[4]),
        job_type=row[5],
        job_sub_type=row[6],
        status=JobStatus(row[7]),
        info=row[8],
        result=NULL_RAW if row[9] is None else msgspec.Raw(row[9]),
        started_timestamp=row[10],
        finished_timestamp=row[11],
        attempt=row[12],
        parent_session_id=row[13],
        retry_of=row[14],
        progress=row[15],
    )


class SqliteStore:
    """A `JobStore` on one SQLite file."""

    def __init__(self, path: str | Path, durability: str = "full") -> None:
        self.path = str(path)
        self.durability = durability
        self._writer = GroupCommitWriter(self._connect)
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
            await self._writer.call(_migrate)
            self._reader = await aiosqlite.connect(self.path, isolation_level=None)
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
            await self._writer.call(_checkpoint)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot checkpoint {self.path}: {exc}") from None

    @property
    def writer(self) -> GroupCommitWriter:
        """The group-commit writer (its counters show how well writes batch)."""
        return self._writer

    async def _read(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        reader = self._reader
        if reader is None:
            raise StorageError("the job store is not open")
        return list(await reader.execute_fetchall(sql, parameters))

    # -- launching and reading --------------------------------------------------------------

    async def launch(self, jobs: list[NewJob]) -> None:
        """Insert jobs as PENDING, durably."""
        await self._writer.submit(_insert_jobs, jobs)
        self.on_change(job.session_id for job in jobs)

    async def get(self, session_id: str) -> Job | None:
        """One job by id."""
        rows = await self._read(Q["get_job"], (session_id,))
        return _row_to_job(rows[0]) if rows else None

    async def batch_owner(self, batch_id: str) -> str | None:
        """The batch's creator."""
        rows = await self._read(Q["get_batch_owner"], (batch_id,))
        return str(rows[0][0]) if rows else None

    async def list_jobs(self, scope: ListScope, limit: int, after: Position | None) -> Page:
        """A keyset page, newest first."""
        position = None
        if after is not None:
            position = (after.created_timestamp, await self._position(scope, after))
        sql, parameters = list_sql(scope, _JOB_COLUMNS, limit, position)
        rows = await self._read(sql, parameters)
        jobs = [_row_to_job(row) for row in rows[:limit]]
        return Page(jobs, more=len(rows) > limit)

    async def _position(self, scope: ListScope, after: Position) -> int:
        rows = await self._read(Q["get_position"], (after.session_id,))
        if not rows:
            raise InvalidPosition(after.session_id)
        seq, created, username, batch_id = rows[0]
        if (
            created != after.created_timestamp
            or (scope.username is not None and username != scope.username)
            or (scope.batch_id is not None and batch_id != scope.batch_id)
        ):
            raise InvalidPosition(after.session_id)
        return int(seq)

    # -- the worker's side ------------------------------------------------------------------

    async def claim(self, claim: Claim) -> list[ClaimedJob]:
        """Claim waiting jobs for a worker."""
        claimed: list[ClaimedJob] = await self._writer.submit(_claim, claim)
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
            _start, (info, now, lease), self._start_committed
        )
        return started is not None

    def _start_committed(self, started: str | None) -> None:
        """Tell the change feed once a start is committed (listeners read the job back)."""
        if started is not None:
            self.on_change((started,))

    async def finish(self, finish: Finish) -> bool:
        """End an attempt."""
        finished: bool = await self._writer.submit(_finish, finish)
        if finished:
            self.on_change([finish.session_id, *(job.session_id for job in finish.launches)])
        return finished

    async def requeue(self, requeue: Requeue) -> bool:
        """Return a held job to PENDING."""
        requeued: bool = await self._writer.submit(_requeue, requeue)
        if requeued:
            self.on_change((requeue.session_id,))
        return requeued

    async def extend_leases(self, leases: list[Lease], lease_expires_at: float) -> int:
        """Heartbeat a set of held jobs."""
        if not leases:
            return 0
        held: int = await self._writer.submit(_extend_leases, (leases, lease_expires_at))
        return held

    async def rescue(self, now: float, everything: bool, backoff: BackoffPolicy) -> list[Rescued]:
        """Requeue or fail jobs whose worker is gone."""
        rescued: list[Rescued] = await self._writer.submit(_rescue, (now, everything, backoff))
        if rescued:
            self.on_change(r.session_id for r in rescued)
        return rescued

    async def recover(self, now: float, job_types: list[str]) -> list[Rescued]:
        """Requeue (or fail) what a dead process held; see `JobStore.recover`."""
        rescued: list[Rescued] = await self._writer.submit(_recover, (now, frozenset(job_types)))
        if rescued:
            self.on_change(r.session_id for r in rescued)
        return rescued

    async def claim_suspect(self, claim: Claim) -> ClaimedJob | None:
        """Claim the oldest waiting suspect."""
        claimed: list[ClaimedJob] = await self._writer.submit(_claim_suspect, claim)
        if claimed:
            self.on_change((claimed[0].session_id,))
        return claimed[0] if claimed else None

    async def clear_suspect(self, session_id: str) -> None:
        """No longer a suspect."""
        await self._writer.submit(_clear_suspect, session_id)

    async def count_suspects(self) -> int:
        """Unfinished suspects."""
        rows = await self._read(Q["count_suspects"])
        return int(rows[0][0])

    async def count_waiting(self, job_type: str, now: float, cap: int) -> int:
        """Claimable jobs of a type, up to `cap`."""
        rows = await self._read(Q["count_waiting"], (job_type, now, cap))
        return int(rows[0][0])

    async def waiting_by_type(self) -> dict[str, int]:
        """PENDING jobs per type."""
        rows = await self._read(Q["waiting_by_type"])
        return {str(job_type): int(count) for job_type, count in rows}

    async def progress(self, lease: Lease, info: str, fraction: float | None) -> bool:
        """Show progress on a running job."""
        shown: bool = await self._writer.submit(_progress, (lease, info, fraction))
        if shown:
            self.on_change((lease.session_id,))
        return shown

    async def cancel(self, session_id: str, info: str, now: float) -> CancelOutcome:
        """End a waiting job, or flag a running one."""
        outcome: CancelOutcome = await self._writer.submit(_cancel, (session_id, info, now))
        self.on_change((session_id,))
        return outcome

    async def batch_counts(self, batch_id: str) -> dict[JobStatus, int]:
        """Jobs of a batch per status."""
        rows = await self._read(Q["batch_counts"], (batch_id,))
        return {JobStatus(status): int(count) for status, count in rows}

    async def workflow(self, session_id: str, limit: int) -> list[Job]:
        """The root of a job's chain and everything launched from it, oldest first."""
        roots = await self._read(Q["workflow_root"], (session_id,))
        if not roots:
            return []
        rows = await self._read(_WORKFLOW_STEPS, (roots[0][0], limit))
        return [_row_to_job(row) for row in rows]

    async def records_mentioning(self, text: str, limit: int) -> list[NewRecord]:
        """Records with the id `text` or whose JSON mentions it."""
        rows = await self._read(Q["records_mentioning"], (text, limit))
        return [
            NewRecord(
                record_id=row[0],
                kind=row[1],
                session_id=row[2],
                username=row[3],
                data=msgspec.json.decode(row[4]),
                created=row[5],
            )
            for row in rows
        ]

    async def fail_unknown_types(self, known: list[str], info: str, now: float) -> list[str]:
        """Fail unfinished jobs of job types nothing runs any more."""
        failed: list[str] = await self._writer.submit(_fail_unknown_types, (known, info, now))
        if failed:
            self.on_change(failed)
        return failed

    async def prune(self, prune: Prune) -> Pruned:
        """Delete old finished batches and workflows whole (see `JobStore.prune`)."""
        pruned: Pruned = await self._writer.submit(prune_step, prune)
        return pruned

    async def secret(self, name: str) -> str:
        """A persistent random secret."""
        secret: str = await self._writer.submit(_secret, name)
        return secret

    async def queue_place(self, session_id: str, now: float) -> QueuePlace | None:
        """Where a job stands in its type's queue (see sqlite_waiting.py)."""
        return await queue_place(self._read, session_id, now)

    async def attempts(self, session_id: str) -> list[Attempt]:
        """A job's attempts (see sqlite_history.py)."""
        return await attempts(self._read, session_id)


# -- writer-thread steps: each applies many arguments of one kind inside the open transaction --


def _migrate(connection: sqlite3.Connection) -> None:
    connection.execute("BEGIN IMMEDIATE")
    try:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        for migration in migrations("sqlite"):
            if migration.version > version:
                for statement in _statements(migration.sql):
                    connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {migration.version}")
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:  # a full disk has rolled it back already
            connection.execute("ROLLBACK")
        raise


def _checkpoint(connection: sqlite3.Connection) -> None:
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit on its own)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return statements


def _insert_jobs(connection: sqlite3.Connection, launches: Sequence[list[NewJob]]) -> list[None]:
    jobs = [job for launch in launches for job in launch]
    connection.executemany(
        Q["insert_batch"],
        [(j.batch_id, j.username, j.created_timestamp) for j in jobs if j.new_batch],
    )
    connection.executemany(
        Q["insert_job"],
        [
            (
                j.session_id,
                j.created_timestamp,
                j.username,
                j.batch_id,
                j.job_type,
                j.job_sub_type,
                j.payload,
                j.max_attempts,
                j.run_after,
                j.parent_session_id,
                j.retry_of,
            )
            for j in jobs
        ],
    )
    return [None] * len(launches)


def _insert_records(connection: sqlite3.Connection, records: list[NewRecord]) -> None:
    connection.executemany(
        Q["insert_record"],
        [
            (r.record_id, r.kind, r.session_id, r.username, msgspec.json.encode(r.data), r.created)
            for r in records
        ],
    )


def _claim(connection: sqlite3.Connection, claims: Sequence[Claim]) -> list[list[ClaimedJob]]:
    results = []
    for claim in claims:
        rows = connection.execute(
            Q["claim_jobs"],
            {
                "info": INFO_DEQUEUED,
                "worker_id": claim.worker_id,
                "lease_expires_at": claim.lease_expires_at,
                "job_type": claim.job_type,
                "now": claim.now,
                "limit": claim.limit,
            },
        ).fetchall()
        rows.sort(key=lambda row: row[0])  # RETURNING order is unspecified; keep FIFO
        results.append([_claimed(row) for row in rows])
    return results


def _start(
    connection: sqlite3.Connection, starts: Sequence[tuple[str, float, Lease]]
) -> list[str | None]:
    """The session id of each start that applied, else None."""
    applied = _apply_each(
        connection,
        Q["start_job"],
        [(info, round(now, 3), lease.session_id, lease.attempt) for info, now, lease in starts],
    )
    return [
        lease.session_id if ok else None for (_, _, lease), ok in zip(starts, applied, strict=True)
    ]


def _finish(connection: sqlite3.Connection, finishes: Sequence[Finish]) -> list[bool]:
    applied = _apply_each(
        connection,
        Q["finish_job"],
        [
            (f.status.value, f.info, f.result, round(f.now, 3), f.session_id, f.attempt)
            for f in finishes
        ],
    )
    # A handler's launches and records exist only if its success was recorded.
    kept = [f for f, ok in zip(finishes, applied, strict=True) if ok]
    launches = [job for f in kept for job in f.launches]
    if launches:
        _insert_jobs(connection, [launches])
    records = [record for f in kept for record in f.records]
    if records:
        _insert_records(connection, records)
    return applied


def _progress(
    connection: sqlite3.Connection, updates: Sequence[tuple[Lease, str, float | None]]
) -> list[bool]:
    return _apply_each(
        connection,
        Q["report_progress"],
        [(info, fraction, lease.session_id, lease.attempt) for lease, info, fraction in updates],
    )


def _cancel(
    connection: sqlite3.Connection, requests: Sequence[tuple[str, str, float]]
) -> list[CancelOutcome]:
    outcomes = []
    for session_id, info, now in requests:
        found = connection.execute(Q["job_status"], (session_id,)).fetchone()
        status = JobStatus(found[0]) if found else None
        ended = bool(
            connection.execute(Q["cancel_waiting"], (info, round(now, 3), session_id)).rowcount
        )
        if not ended:
            connection.execute(Q["request_cancel"], (info, session_id))
        outcomes.append(CancelOutcome(status, ended))
    return outcomes


def _fail_unknown_types(
    connection: sqlite3.Connection, requests: Sequence[tuple[list[str], str, float]]
) -> list[list[str]]:
    results = []
    for known, info, now in requests:
        marks = ", ".join("?" * len(known))
        rows = connection.execute(
            f"SELECT session_id, job_type FROM jobs WHERE status IN "
            f"('PENDING', 'DEQUEUED', 'IN_PROGRESS') AND job_type NOT IN ({marks})",
            known,
        ).fetchall()
        for session_id, job_type in rows:
            connection.execute(
                Q["fail_job"], (info.format(job_type=job_type), round(now, 3), session_id)
            )
        results.append([row[0] for row in rows])
    return results


def _secret(connection: sqlite3.Connection, names: Sequence[str]) -> list[str]:
    values = []
    for name in names:
        connection.execute(Q["put_meta_if_absent"], (name, secrets.token_hex(32)))
        values.append(str(connection.execute(Q["get_meta"], (name,)).fetchone()[0]))
    return values


def _requeue(connection: sqlite3.Connection, requeues: Sequence[Requeue]) -> list[bool]:
    return _apply_each(
        connection,
        Q["requeue_job"],
        [(r.info, r.run_after, 1 if r.refund else 0, r.session_id, r.attempt) for r in requeues],
    )


def _apply_each(
    connection: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]
) -> list[bool]:
    """Apply a guarded UPDATE per row and say which applied.

    One executemany when every guard holds (the normal case); otherwise row by row, which
    is still inside the same transaction and touches each job once.
    """
    if len(rows) > 1:
        connection.execute("SAVEPOINT guarded")
        cursor = connection.executemany(sql, rows)
        if cursor.rowcount == len(rows):
            connection.execute("RELEASE guarded")
            return [True] * len(rows)
        connection.execute("ROLLBACK TO guarded")
        connection.execute("RELEASE guarded")
    return [connection.execute(sql, row).rowcount == 1 for row in rows]


def _extend_leases(
    connection: sqlite3.Connection, heartbeats: Sequence[tuple[list[Lease], float]]
) -> list[int]:
    results = []
    for leases, expires in heartbeats:
        cursor = connection.executemany(
            Q["extend_lease"], [(expires, lease.session_id, lease.attempt) for lease in leases]
        )
        results.append(cursor.rowcount)
    return results


def _rescue(
    connection: sqlite3.Connection, requests: Sequence[tuple[float, bool, BackoffPolicy]]
) -> list[list[Rescued]]:
    results = []
    for now, everything, backoff in requests:
        horizon = float("inf") if everything else now
        rescued = []
        for session_id, job_type, attempt, max_attempts in connection.execute(
            Q["expired_leases"], (horizon,)
        ).fetchall():
            if attempt >= max_attempts:
                applied = connection.execute(
                    Q["finish_job"],
                    (
                        JobStatus.FAILED.value,
                        _GAVE_UP.format(attempt=attempt),
                        None,
                        round(now, 3),
                        session_id,
                        attempt,
                    ),
                ).rowcount
                status = JobStatus.FAILED
            else:
                applied = connection.execute(
                    Q["requeue_job"],
                    (_LOST.format(attempt=attempt), now + backoff(attempt), 0, session_id, attempt),
                ).rowcount
                status = JobStatus.PENDING
            if applied:
                rescued.append(Rescued(session_id=session_id, job_type=job_type, status=status))
        results.append(rescued)
    return results


def _recover(
    connection: sqlite3.Connection, requests: Sequence[tuple[float, frozenset[str]]]
) -> list[list[Rescued]]:
    results = []
    for now, job_types in requests:
        rescued = []
        for session_id, job_type, attempt, max_attempts, suspect in connection.execute(
            Q["held_jobs"]
        ).fetchall():
            if job_type not in job_types:
                continue  # held by a worker outside jobd, which may still be alive
            if not suspect:
                info, refund = _SUSPECT.format(attempt=attempt), 1
            elif attempt >= max_attempts:
                connection.execute(
                    Q["finish_job"],
                    (
                        JobStatus.FAILED.value,
                        _CULPRIT.format(attempt=attempt),
                        None,
                        round(now, 3),
                        session_id,
                        attempt,
                    ),
                )
                rescued.append(
                    Rescued(session_id=session_id, job_type=job_type, status=JobStatus.FAILED)
                )
                continue
            else:
                info, refund = _RAN_ALONE.format(attempt=attempt), 0
            connection.execute(Q["requeue_suspect"], (info, now, refund, session_id, attempt))
            rescued.append(
                Rescued(session_id=session_id, job_type=job_type, status=JobStatus.PENDING)
            )
        results.append(rescued)
    return results


def _claim_suspect(
    connection: sqlite3.Connection, claims: Sequence[Claim]
) -> list[list[ClaimedJob]]:
    results = []
    for claim in claims:
        rows = connection.execute(
            Q["claim_suspect"],
            {
                "info": INFO_DEQUEUED,
                "worker_id": claim.worker_id,
                "lease_expires_at": claim.lease_expires_at,
                "now": claim.now,
            },
        ).fetchall()
        results.append([_claimed(row) for row in rows])
    return results


def _claimed(row: Sequence[Any]) -> ClaimedJob:
    return ClaimedJob(
        session_id=row[1],
        created_timestamp=row[2],
        username=row[3],
        batch_id=row[4],
        job_type=row[5],
        job_sub_type=row[6],
        payload=row[7],
        attempt=row[8],
        max_attempts=row[9],
    )


def _clear_suspect(connection: sqlite3.Connection, session_ids: Sequence[str]) -> list[None]:
    connection.executemany(Q["clear_suspect"], [(s,) for s in session_ids])
    return [None] * len(session_ids)
