"""The SQLite backend's writer-thread steps: each applies many writes of one kind inside the
group-commit writer's open transaction (see `writer.py`). Rows are read by column name.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
from collections.abc import Sequence
from typing import Any

import msgspec

from ..clock import rounded_to_ms, truncated_to_ms
from ..models import INFO_DEQUEUED, JobStatus
from .dialect import migrations, queries
from .messages import CANCELLED_RUNNING
from .rows import claimed_from_row, new_job_row
from .sqlite_fold import QueuedFinish, QueuedStart
from .start_windows import given_back
from .store import (
    CancelOutcome,
    Claim,
    ClaimedJob,
    Finish,
    Lease,
    NewJob,
    NewRecord,
    Requeue,
)

Q = queries("sqlite")
log = logging.getLogger(__name__)


# -- writer-thread steps: each applies many arguments of one kind inside the open transaction --


def migrate(connection: sqlite3.Connection) -> None:
    """Apply the numbered migrations not applied yet, in one transaction."""
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


def checkpoint(connection: sqlite3.Connection) -> None:
    """Copy the WAL back into the database and truncate it."""
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


def insert_jobs(connection: sqlite3.Connection, launches: Sequence[list[NewJob]]) -> list[None]:
    """Insert the launched jobs (and their new batches)."""
    jobs = [job for launch in launches for job in launch]
    connection.executemany(
        Q["insert_batch"],
        [(j.batch_id, j.username, j.created_timestamp) for j in jobs if j.new_batch],
    )
    _insert_many(connection, [new_job_row(j) for j in jobs])
    return [None] * len(launches)


def _insert_many(connection: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """insert_job for each row: in one statement if there are several (see `_apply_each`)."""
    bulk = _json_rows(rows) if len(rows) > 1 else None
    if bulk is not None:
        connection.execute(Q["insert_jobs_bulk"], (bulk,))
    else:
        connection.executemany(Q["insert_job"], rows)


def _insert_records(connection: sqlite3.Connection, records: list[NewRecord]) -> None:
    connection.executemany(
        Q["insert_record"],
        [
            (r.record_id, r.kind, r.session_id, r.username, msgspec.json.encode(r.data), r.created)
            for r in records
        ],
    )


def claim(connection: sqlite3.Connection, claims: Sequence[Claim]) -> list[list[ClaimedJob]]:
    """Claim waiting jobs for each claim, oldest first."""
    results = []
    for claim in claims:
        rows = connection.execute(
            Q["claim_jobs"],
            {
                "info": INFO_DEQUEUED,
                "worker_id": claim.worker_id,
                "lease_expires_at": rounded_to_ms(claim.lease_expires_at),
                "job_type": claim.job_type,
                "now": claim.now,
                "claimed_at": rounded_to_ms(claim.now),  # the start windows count at it
                "limit": claim.limit,
            },
        ).fetchall()
        rows.sort(key=lambda row: row["seq"])  # RETURNING order is unspecified; keep FIFO
        results.append([claimed_from_row(row) for row in rows])
    return results


def start(connection: sqlite3.Connection, starts: Sequence[QueuedStart]) -> list[str | None]:
    """The session id of each start that applied (or was folded into its finish), else None."""
    todo = [s for s in starts if not s.folded]
    applied = iter(
        _apply_each(
            connection,
            Q["start_job"],
            [(s.info, rounded_to_ms(s.now), s.lease.session_id, s.lease.attempt) for s in todo],
            Q["start_jobs_bulk"],
        )
    )
    # A folded start is written by its finish, later in this batch (sqlite_fold.py).
    return [s.lease.session_id if s.folded or next(applied) else None for s in starts]


def finish(connection: sqlite3.Connection, finishes: Sequence[QueuedFinish]) -> list[bool]:
    """End attempts, with what their handlers launched and recorded (and their folded
    starts, see `sqlite_fold.py`)."""
    applied = [False] * len(finishes)
    plain = [i for i, q in enumerate(finishes) if q.folded_start is None]
    folded = [i for i, q in enumerate(finishes) if q.folded_start is not None]
    if plain:
        rows = [_finish_row(finishes[i].finish) for i in plain]
        for i, ok in zip(
            plain,
            _apply_each(connection, Q["finish_job"], rows, Q["finish_jobs_bulk"]),
            strict=True,
        ):
            applied[i] = ok
    if folded:
        rows = [_finish_row(finishes[i].finish, finishes[i].folded_start) for i in folded]
        done = _apply_each(
            connection, Q["start_and_finish_job"], rows, Q["start_and_finish_jobs_bulk"]
        )
        for i, ok in zip(folded, done, strict=True):
            # Not applied in one (a trigger refuses a cancelled job's success; else a broken
            # rule): the start and the finish are tried apart, as if never folded.
            applied[i] = ok or _start_then_finish(connection, finishes[i])
    # A handler's launches and records exist only if its success was recorded.
    kept = [q.finish for q, ok in zip(finishes, applied, strict=True) if ok]
    launches = [job for f in kept for job in f.launches]
    if launches:
        insert_jobs(connection, [launches])
    records = [record for f in kept for record in f.records]
    if records:
        _insert_records(connection, records)
    return applied


def _finish_row(f: Finish, start: QueuedStart | None = None) -> tuple[Any, ...]:
    """finish_job's parameters; start_and_finish_job's when the finish writes `start` too."""
    ended = (f.status.value, f.info, f.result, rounded_to_ms(f.now))
    started = () if start is None else (rounded_to_ms(start.now),)
    return (*ended, *started, f.session_id, f.attempt)


def _start_then_finish(connection: sqlite3.Connection, queued: QueuedFinish) -> bool:
    """A folded finish written the unfolded way, its start and then itself; did it apply?"""
    start, f = queued.folded_start, queued.finish
    assert start is not None
    lease = start.lease
    started = connection.execute(
        Q["start_job"], (start.info, rounded_to_ms(start.now), lease.session_id, lease.attempt)
    ).rowcount
    if not started:  # cannot happen unless the barrier rule is broken (as in `SqliteStore`)
        log.error(
            "the start of job %s (attempt %d), folded into its finish, did not apply",
            lease.session_id,
            lease.attempt,
            extra={"action": "start_lost", "session_id": lease.session_id},
        )
    return bool(connection.execute(Q["finish_job"], _finish_row(f)).rowcount)


def progress(
    connection: sqlite3.Connection, updates: Sequence[tuple[Lease, str, float | None]]
) -> list[bool]:
    """Show progress on running jobs."""
    return _apply_each(
        connection,
        Q["report_progress"],
        [(info, fraction, lease.session_id, lease.attempt) for lease, info, fraction in updates],
    )


def cancel(
    connection: sqlite3.Connection, requests: Sequence[tuple[str, str, float]]
) -> list[CancelOutcome]:
    """Cancel each job: end it if waiting, mark it if running."""
    outcomes = []
    for session_id, info, now in requests:
        found = connection.execute(Q["job_status"], (session_id,)).fetchone()
        status = JobStatus(found[0]) if found else None
        ended = bool(
            connection.execute(Q["cancel_waiting"], (info, rounded_to_ms(now), session_id)).rowcount
        )
        if not ended:
            connection.execute(Q["request_cancel"], (info, session_id))
        outcomes.append(CancelOutcome(status, ended))
    return outcomes


def fail_unknown_types(
    connection: sqlite3.Connection, requests: Sequence[tuple[list[str], str, float]]
) -> list[list[str]]:
    """Fail unfinished jobs of job types nothing runs."""
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
                Q["fail_job"], (info.format(job_type=job_type), rounded_to_ms(now), session_id)
            )
        results.append([row[0] for row in rows])
    return results


def secret(connection: sqlite3.Connection, names: Sequence[str]) -> list[str]:
    """Create each named secret once; return its value."""
    values = []
    for name in names:
        connection.execute(Q["put_meta_if_absent"], (name, secrets.token_hex(32)))
        values.append(str(connection.execute(Q["get_meta"], (name,)).fetchone()[0]))
    return values


def requeue(connection: sqlite3.Connection, requeues: Sequence[Requeue]) -> list[JobStatus | None]:
    """Return held jobs to PENDING (FAILED if cancelled while running): the status each was
    left in, None where the attempt no longer held the job."""
    return [
        requeue_one(connection, r.session_id, r.attempt, r.info, r.run_after, r.refund, r.now)
        for r in requeues
    ]


def requeue_one(
    connection: sqlite3.Connection,
    session_id: str,
    attempt: int,
    info: str | None,
    run_after: float,
    refund: bool,
    now: float,
) -> JobStatus | None:
    """Requeue one held job (FAILED if cancelled while running); None if not held. A job
    refunded before it started gives its start back to its type's start windows."""
    if refund:
        held = connection.execute(Q["held_unstarted"], (session_id, attempt)).fetchall()
        connection.executemany(
            Q["give_back_starts"],
            [(n, *window) for window, n in given_back((r[0], r[1]) for r in held).items()],
        )
    # One statement per job, in the open transaction: a duplicate in the same group finds
    # the job moved on and changes nothing. Read to the end so the statement is done.
    rows = connection.execute(
        Q["requeue_job"],
        {
            "info": info,
            "cancelled": CANCELLED_RUNNING,
            "run_after": truncated_to_ms(run_after),
            "refund": 1 if refund else 0,
            "now": rounded_to_ms(now),
            "session_id": session_id,
            "attempt": attempt,
        },
    ).fetchall()
    return JobStatus(rows[0]["status"]) if rows else None


def _apply_each(
    connection: sqlite3.Connection,
    sql: str,
    rows: list[tuple[Any, ...]],
    bulk_sql: str | None = None,
) -> list[bool]:
    """Apply a guarded UPDATE per row and say which applied.

    All at once when every guard holds (the normal case): `bulk_sql`, the same UPDATE over a
    JSON array of the rows, else an executemany. Otherwise row by row, which is still inside
    the same transaction and touches each job once. One statement for all rows matters: the
    sqlite3 module lets go of the GIL and takes it back around every row it steps, and each
    time it waits for the event-loop thread's turn to end.
    """
    if len(rows) > 1:
        connection.execute("SAVEPOINT guarded")
        bulk = _json_rows(rows) if bulk_sql is not None else None
        if bulk_sql is None or bulk is None:
            cursor = connection.executemany(sql, rows)
        else:
            cursor = connection.execute(bulk_sql, (bulk,))
        if cursor.rowcount == len(rows):
            connection.execute("RELEASE guarded")
            return [True] * len(rows)
        connection.execute("ROLLBACK TO guarded")
        connection.execute("RELEASE guarded")
    return [connection.execute(sql, row).rowcount == 1 for row in rows]


def _json_rows(rows: list[tuple[Any, ...]]) -> bytes | None:
    """Rows as one JSON array for a bulk statement (bytes, JSON documents, as text); None if
    a text holds a NUL character, which SQLite's JSON functions would cut the text at."""
    encoded = msgspec.json.encode(
        [[v.decode() if isinstance(v, bytes) else v for v in row] for row in rows]
    )
    return None if b"\\u0000" in encoded else encoded


def extend_leases(
    connection: sqlite3.Connection, heartbeats: Sequence[tuple[list[Lease], float]]
) -> list[int]:
    """Push held jobs' leases forward; how many each heartbeat still held."""
    results = []
    for leases, expires in heartbeats:
        cursor = connection.executemany(
            Q["extend_lease"],
            [(rounded_to_ms(expires), lease.session_id, lease.attempt) for lease in leases],
        )
        results.append(cursor.rowcount)
    return results
