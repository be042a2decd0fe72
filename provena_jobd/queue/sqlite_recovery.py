"""The SQLite writer's steps for jobs whose holder is gone: the lease rescue, crash recovery
at startup, and the suspects that then run alone (see `SqliteStore.recover`). Every one is a
barrier for the group-commit writer (`writer.py`): none is a routine step.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ..clock import rounded_to_ms, truncated_to_ms
from ..models import INFO_DEQUEUED, JobStatus
from .dialect import queries
from .messages import CANCELLED_RUNNING, CULPRIT, GAVE_UP, LOST, RAN_ALONE, SUSPECT
from .rows import claimed_from_row
from .sqlite_steps import requeue_one
from .store import Claim, ClaimedJob, Rescue, Rescued

Q = queries("sqlite")


def _end(
    connection: sqlite3.Connection, session_id: str, attempt: int, info: str, now: float
) -> bool:
    """End a held attempt FAILED with `info` (a rescue or recovery that must not requeue)."""
    cursor = connection.execute(
        Q["finish_job"],
        (JobStatus.FAILED.value, info, None, rounded_to_ms(now), session_id, attempt),
    )
    return cursor.rowcount == 1


def rescue(connection: sqlite3.Connection, requests: Sequence[Rescue]) -> list[list[Rescued]]:
    """Requeue or fail jobs whose lease expired before each horizon."""
    results = []
    for request in requests:
        now, backoff = request.now, request.backoff
        rescued = []
        for session_id, job_type, attempt, max_attempts, worker_id, cancel in connection.execute(
            Q["expired_leases"], (request.horizon,)
        ).fetchall():
            status: JobStatus | None
            if cancel is not None or attempt >= max_attempts:
                info = _cancelled(cancel) or GAVE_UP.format(attempt=attempt)
                ended = _end(connection, session_id, attempt, info, now)
                status = JobStatus.FAILED if ended else None
            else:
                status = requeue_one(
                    connection,
                    session_id,
                    attempt,
                    LOST.format(attempt=attempt),
                    now + backoff.after(attempt),
                    False,
                    now,
                )
            if status is not None:
                rescued.append(
                    Rescued(
                        session_id=session_id, job_type=job_type, status=status, worker_id=worker_id
                    )
                )
        results.append(rescued)
    return results


def recover(
    connection: sqlite3.Connection, requests: Sequence[tuple[float, frozenset[str]]]
) -> list[list[Rescued]]:
    """At startup, requeue what a dead process held as suspects (see `JobStore.recover`)."""
    results = []
    for now, job_types in requests:
        rescued = []
        for session_id, job_type, attempt, max_attempts, suspect, cancel in connection.execute(
            Q["held_jobs"]
        ).fetchall():
            if job_type not in job_types:
                continue  # held by a worker outside jobd, which may still be alive
            if cancel is not None or (suspect and attempt >= max_attempts):
                info = _cancelled(cancel) or CULPRIT.format(attempt=attempt)
                _end(connection, session_id, attempt, info, now)
                rescued.append(
                    Rescued(session_id=session_id, job_type=job_type, status=JobStatus.FAILED)
                )
                continue
            if not suspect:
                info, refund = SUSPECT.format(attempt=attempt), 1
            else:
                info, refund = RAN_ALONE.format(attempt=attempt), 0
            connection.execute(
                Q["requeue_suspect"], (info, truncated_to_ms(now), refund, session_id, attempt)
            )
            rescued.append(
                Rescued(session_id=session_id, job_type=job_type, status=JobStatus.PENDING)
            )
        results.append(rescued)
    return results


def _cancelled(cancel: str | None) -> str | None:
    """A held job's info if its cancel was recorded while it ran: it ends FAILED with it
    rather than run again (whatever else ended its attempt: a lost worker, a crash)."""
    return None if cancel is None else CANCELLED_RUNNING.format(info=cancel)


def claim_suspect(
    connection: sqlite3.Connection, claims: Sequence[Claim]
) -> list[list[ClaimedJob]]:
    """Claim the oldest waiting suspect, to run alone."""
    results = []
    for claim in claims:
        rows = connection.execute(
            Q["claim_suspect"],
            {
                "info": INFO_DEQUEUED,
                "worker_id": claim.worker_id,
                "lease_expires_at": rounded_to_ms(claim.lease_expires_at),
                "now": claim.now,
            },
        ).fetchall()
        results.append([claimed_from_row(row) for row in rows])
    return results


def clear_suspect(connection: sqlite3.Connection, session_ids: Sequence[str]) -> list[None]:
    """The jobs ran alone without taking jobd down: no longer suspects."""
    connection.executemany(Q["clear_suspect"], [(s,) for s in session_ids])
    return [None] * len(session_ids)
