"""The PostgreSQL backend's group-commit steps: each applies many writes of one kind.

A step runs one statement over arrays (`unnest`) where it can, which is atomic alone; a step
with several statements that stand or fall together opens a transaction (`atomic`). Rows are
read by column name.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from ..clock import rounded_to_ms, truncated_to_ms
from ..models import INFO_DEQUEUED, JobStatus
from .dialect import queries
from .messages import CANCELLED_RUNNING, GAVE_UP, LOST
from .rows import claimed_from_row, new_job_row
from .start_windows import given_back
from .store import (
    CancelOutcome,
    Claim,
    ClaimedJob,
    Finish,
    Lease,
    NewJob,
    Requeue,
    Rescue,
    Rescued,
)

Q = queries("postgres")
Connection = Any  # asyncpg.Connection (or a pool's proxy of one); asyncpg has no type stubs


def _applied(keys: Sequence[tuple[str, int]], rows: Iterable[Any]) -> list[bool]:
    """Which of the requested (session_id, attempt) a guarded UPDATE applied, each once."""
    done = {(row["session_id"], row["attempt"]) for row in rows}
    applied = []
    for key in keys:
        applied.append(key in done)
        done.discard(key)  # a duplicate in the same group is a second, refused write
    return applied


# -- group-commit steps: each applies many arguments of one kind in one transaction ---------


async def insert_jobs(connection: Connection, jobs: list[NewJob]) -> None:
    """Insert jobs (and their new batches) as PENDING."""
    batches = [j for j in jobs if j.new_batch]
    if batches:
        await connection.execute(
            Q["insert_batches"],
            [j.batch_id for j in batches],
            [j.username for j in batches],
            [j.created_timestamp for j in batches],
        )
    if not jobs:
        return
    columns = [list(column) for column in zip(*map(new_job_row, jobs), strict=True)]
    await connection.execute(Q["insert_jobs"], *columns)


def rows_touched(status: str) -> int:
    """Rows a statement touched, from its status tag ("UPDATE 3")."""
    return int(status.rsplit(" ", 1)[-1])


def atomic(connection: Connection, needed: bool) -> Any:
    """A transaction when a step runs several statements that stand or fall together."""
    return connection.transaction() if needed else contextlib.nullcontext()


async def launch_step(connection: Connection, launches: Sequence[list[NewJob]]) -> list[None]:
    """Insert launched jobs (and their new batches)."""
    jobs = [job for launch in launches for job in launch]
    async with atomic(connection, any(job.new_batch for job in jobs)):
        await insert_jobs(connection, jobs)
    return [None] * len(launches)


async def claim_step(connection: Connection, claims: Sequence[Claim]) -> list[list[ClaimedJob]]:
    """Claim waiting jobs for each claim, skipping rows other nodes are claiming."""
    results = []
    for claim in claims:
        rows = await connection.fetch(
            Q["claim_jobs"],
            INFO_DEQUEUED,
            claim.worker_id,
            rounded_to_ms(claim.lease_expires_at),
            claim.job_type,
            claim.limit,
            claim.now,
            rounded_to_ms(claim.now),  # claimed_at: the start windows count at it
        )
        rows.sort(key=lambda row: row["seq"])  # RETURNING order is unspecified; keep FIFO
        results.append([claimed_from_row(row) for row in rows])
    return results


async def start_step(
    connection: Connection, starts: Sequence[tuple[Lease, str, float]]
) -> list[bool]:
    """DEQUEUED -> IN_PROGRESS for each still-held lease."""
    keys = [(lease.session_id, lease.attempt) for lease, _, _ in starts]
    rows = await connection.fetch(
        Q["start_jobs"],
        [k[0] for k in keys],
        [k[1] for k in keys],
        [info for _, info, _ in starts],
        [rounded_to_ms(now) for _, _, now in starts],
    )
    return _applied(keys, rows)


async def finish_step(connection: Connection, finishes: Sequence[Finish]) -> list[bool]:
    """End attempts, with what their handlers launched and recorded."""
    # A handler's launches and records are committed with its end, or not at all.
    async with atomic(connection, any(f.launches or f.records for f in finishes)):
        return await _finish_all(connection, finishes)


async def _finish_all(connection: Connection, finishes: Sequence[Finish]) -> list[bool]:
    keys = [(f.session_id, f.attempt) for f in finishes]
    rows = await connection.fetch(
        Q["finish_jobs"],
        [f.session_id for f in finishes],
        [f.attempt for f in finishes],
        [f.status.value for f in finishes],
        [f.info for f in finishes],
        [f.result for f in finishes],
        [rounded_to_ms(f.now) for f in finishes],
    )
    applied = _applied(keys, rows)
    # A handler's launches and records exist only if its end was recorded.
    kept = [f for f, ok in zip(finishes, applied, strict=True) if ok]
    launches = [job for f in kept for job in f.launches]
    if launches:
        await insert_jobs(connection, launches)
    records = [record for f in kept for record in f.records]
    if records:
        await connection.execute(
            Q["insert_records"],
            [r.record_id for r in records],
            [r.kind for r in records],
            [r.session_id for r in records],
            [r.username for r in records],
            [msgspec.json.encode(r.data) for r in records],
            [r.created for r in records],
        )
    return applied


async def _give_back_starts(connection: Connection, refunded: Sequence[Requeue]) -> None:
    """Jobs going back before they started give their starts back to their start windows,
    under the windows' advisory locks: a claim then never writes a count read before this,
    and this never lowers a window its claim did not count in."""
    held = await connection.fetch(
        Q["held_unstarted"], [r.session_id for r in refunded], [r.attempt for r in refunded]
    )
    # In the claims' order (by type), so a claim group and this never wait on each other.
    for job_type in sorted({row["job_type"] for row in held}):
        await connection.execute(Q["lock_start_windows"], job_type)
    starts = given_back((row["job_type"], row["claimed_at"]) for row in held)
    if starts:
        await connection.execute(
            Q["give_back_starts"],
            [job_type for job_type, _, _ in starts],
            [length for _, length, _ in starts],
            [start for _, _, start in starts],
            list(starts.values()),
        )


async def requeue_step(
    connection: Connection, requeues: Sequence[Requeue]
) -> list[JobStatus | None]:
    """Return held jobs to PENDING (FAILED if cancelled while running): the status each was
    left in, None where the attempt no longer held the job. Jobs refunded before they started
    give their starts back to their types' start windows."""
    refunded = [r for r in requeues if r.refund]
    async with atomic(connection, bool(refunded)):
        if refunded:
            await _give_back_starts(connection, refunded)
        rows = await connection.fetch(
            Q["requeue_jobs"],
            [r.session_id for r in requeues],
            [r.attempt for r in requeues],
            [r.info for r in requeues],
            [truncated_to_ms(r.run_after) for r in requeues],
            [1 if r.refund else 0 for r in requeues],
            [rounded_to_ms(r.now) for r in requeues],
            CANCELLED_RUNNING,
        )
    left = {(row["session_id"], row["attempt"]): JobStatus(row["status"]) for row in rows}
    # A duplicate in the same group is a second, refused write: only the first gets a status.
    return [left.pop((r.session_id, r.attempt), None) for r in requeues]


async def progress_step(
    connection: Connection, updates: Sequence[tuple[Lease, str, float | None]]
) -> list[bool]:
    """Show progress on running jobs."""
    keys = [(lease.session_id, lease.attempt) for lease, _, _ in updates]
    rows = await connection.fetch(
        Q["report_progress"],
        [k[0] for k in keys],
        [k[1] for k in keys],
        [info for _, info, _ in updates],
        [fraction for _, _, fraction in updates],
    )
    return _applied(keys, rows)


async def extend_step(
    connection: Connection, heartbeats: Sequence[tuple[list[Lease], float]]
) -> list[int]:
    """Push held jobs' leases forward."""
    results = []
    for leases, expires in heartbeats:
        status = await connection.execute(
            Q["extend_leases"],
            [lease.session_id for lease in leases],
            [lease.attempt for lease in leases],
            rounded_to_ms(expires),
        )
        results.append(rows_touched(status))
    return results


async def rescue_step(connection: Connection, requests: Sequence[Rescue]) -> list[list[Rescued]]:
    """Requeue or fail jobs whose lease expired before each horizon (fail: out of attempts,
    or cancelled while running, which must not run again)."""
    results = []
    for request in requests:
        failed = await connection.fetch(
            Q["rescue_end"], request.horizon, rounded_to_ms(request.now), GAVE_UP, CANCELLED_RUNNING
        )
        requeued = await connection.fetch(
            Q["rescue_requeue"],
            request.horizon,
            request.now,
            LOST,
            request.backoff.base_s,
            request.backoff.max_s,
        )
        rescued = [
            Rescued(
                session_id=row["session_id"],
                job_type=row["job_type"],
                status=status,
                worker_id=row["worker_id"],
            )
            for rows, status in ((failed, JobStatus.FAILED), (requeued, JobStatus.PENDING))
            for row in rows
        ]
        results.append(rescued)
    return results


async def cancel_step(
    connection: Connection, requests: Sequence[tuple[str, str, float]]
) -> list[CancelOutcome]:
    """Cancel each job: end it if waiting, mark it if running."""
    outcomes = []
    for session_id, info, now in requests:
        async with connection.transaction():  # the status read is the one the cancel changed
            outcomes.append(await _cancel_one(connection, session_id, info, now))
    return outcomes


async def _cancel_one(
    connection: Connection, session_id: str, info: str, now: float
) -> CancelOutcome:
    found = await connection.fetchval(Q["job_status"], session_id)
    status = JobStatus(found) if found else None
    ended = await connection.execute(Q["cancel_waiting"], info, rounded_to_ms(now), session_id)
    if ended.endswith(" 0"):
        await connection.execute(Q["request_cancel"], info, session_id)
        return CancelOutcome(status, False)
    return CancelOutcome(status, True)


async def fail_unknown_step(
    connection: Connection, requests: Sequence[tuple[list[str], str, float]]
) -> list[list[str]]:
    """Fail unfinished jobs of job types nothing runs."""
    results = []
    for known, info, now in requests:
        rows = await connection.fetch(Q["fail_unknown_types"], known, info, rounded_to_ms(now))
        failed = [row["session_id"] for row in rows]
        results.append(failed)
    return results


async def secret_step(connection: Connection, names: Sequence[str]) -> list[str]:
    """Create each named secret once; return its value."""
    values = []
    for name in names:
        await connection.execute(Q["put_meta_if_absent"], name, secrets.token_hex(32))
        values.append(str(await connection.fetchval(Q["get_meta"], name)))
    return values
