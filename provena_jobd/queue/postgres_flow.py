"""Scheduling and flow control on PostgreSQL: keyed launches, pause, start limits, schedule fires.

The same decisions as `sqlite_flow`, as group-commit steps of the PostgreSQL backend. Each
step runs in one transaction, so a check and the write it decides on stand or fall together;
what makes them hold across nodes is the database: the primary keys of `launch_keys` and
`schedule_fires` (a racing insert does nothing), and a per-type advisory lock around the
start windows (two nodes never both spend the last start of a window). Change notices come
from the jobs triggers (migration 0004), as for every other write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from ..clock import rounded_to_ms
from .dialect import queries
from .postgres_steps import atomic, claim_step, insert_jobs
from .rows import earlier_launch_from_row, launched
from .start_windows import allowance, counted, limited, reopens_at
from .store import (
    FlowClaim,
    FlowClaimed,
    KeyedLaunch,
    LaunchOutcome,
    NewJob,
    Pause,
    ScheduleFire,
)

Q = queries("postgres")
Connection = Any  # asyncpg.Connection (or a pool's proxy of one); asyncpg has no type stubs


async def _insert(connection: Connection, job: NewJob, info: str | None) -> None:
    if info is not None:
        job = msgspec.structs.replace(job, info=info)
    await insert_jobs(connection, [job])


async def launch_once_step(
    connection: Connection, launches: Sequence[KeyedLaunch]
) -> list[LaunchOutcome]:
    """Launch each job unless its idempotency key already launched one."""
    outcomes = []
    async with connection.transaction():
        for launch in launches:
            job, key = launch.job, launch.key
            if key is not None:
                await connection.execute(Q["expire_launch_keys"], key.now)
                inserted = await connection.fetchval(
                    Q["insert_launch_key"],
                    key.username,
                    key.key,
                    key.fingerprint,
                    job.session_id,
                    job.batch_id,
                    key.expires_at,
                )
                if inserted is None:  # the key was there: its first launch stands
                    row = await connection.fetchrow(Q["get_launch_key"], key.username, key.key)
                    outcomes.append(earlier_launch_from_row(row))
                    continue
            await _insert(connection, job, launch.info)
            outcomes.append(launched(launch))
    return outcomes


async def _hold(connection: Connection, job_type: str, info: str, now: float) -> None:
    await connection.execute(Q["hold_waiting"], info, job_type, now)


async def claim_flow_step(connection: Connection, flows: Sequence[FlowClaim]) -> list[FlowClaimed]:
    """Claim within pause and start limits, counting starts in windows every node shares."""
    results = []
    # One unlimited claim is one statement after a read: no transaction (two round trips
    # less). Several claims stand or fall together; limited ones lock their windows.
    async with atomic(connection, len(flows) > 1 or any(limited(f.limits) for f in flows)):
        # Lock in one order (by type), so two nodes' groups never wait on each other.
        for job_type in sorted({f.claim.job_type for f in flows if limited(f.limits)}):
            await connection.execute(Q["lock_start_windows"], job_type)
        for flow in flows:
            results.append(await _claim_flow(connection, flow))
    return results


async def _claim_flow(connection: Connection, flow: FlowClaim) -> FlowClaimed:
    claim = flow.claim
    if await connection.fetchval(Q["is_paused"], claim.job_type):
        await _hold(connection, claim.job_type, flow.paused_info, claim.now)
        return FlowClaimed(jobs=[], paused=True)
    # An unlimited type has no windows to read (one round trip less per claim).
    rows = (
        await connection.fetch(Q["start_windows"], claim.job_type) if limited(flow.limits) else []
    )
    counts = {float(row["length"]): (float(row["start"]), int(row["count"])) for row in rows}
    # Checked and counted at the claimed_at the claimed rows get (see `given_back`).
    at = rounded_to_ms(claim.now)
    allowed = allowance(at, flow.limits, counts)
    limit = min(claim.limit, allowed)
    jobs = (
        (await claim_step(connection, [msgspec.structs.replace(claim, limit=limit)]))[0]
        if limit
        else []
    )
    windows = counted(at, flow.limits, counts, len(jobs))
    if windows:
        await connection.execute(
            Q["put_start_windows"],
            claim.job_type,
            list(windows),
            [start for start, _ in windows.values()],
            [count for _, count in windows.values()],
        )
    held_back = allowed < claim.limit and bool(
        await connection.fetchval(Q["any_claimable"], claim.job_type, claim.now)
    )
    if not held_back:
        return FlowClaimed(jobs=jobs)
    await _hold(connection, claim.job_type, flow.limited_info, claim.now)
    return FlowClaimed(jobs=jobs, limited=True, retry_at=reopens_at(at, flow.limits, windows))


async def set_paused_step(connection: Connection, pauses: Sequence[Pause]) -> list[list[str]]:
    """Pause (marking the claimable jobs) or resume (clearing that mark)."""
    results = []
    async with connection.transaction():
        for pause in pauses:
            if pause.paused:
                await connection.execute(Q["insert_paused"], pause.job_type, pause.now)
                rows = await connection.fetch(
                    Q["hold_waiting"], pause.info, pause.job_type, pause.now
                )
            else:
                await connection.execute(Q["delete_paused"], pause.job_type)
                rows = await connection.fetch(Q["release_waiting"], pause.job_type, pause.info)
            results.append([row["session_id"] for row in rows])
    return results


async def fire_schedule_step(connection: Connection, fires: Sequence[ScheduleFire]) -> list[bool]:
    """Record each due time once; launch its job only if this call recorded it."""
    results = []
    async with connection.transaction():
        for fire in fires:
            session_id = fire.job.session_id if fire.job else None
            recorded = await connection.fetchval(
                Q["insert_schedule_fire"], fire.schedule, fire.due_at, session_id
            )
            if recorded is not None and fire.job is not None:
                await _insert(connection, fire.job, None)
            results.append(recorded is not None)
    return results


def paused_from_rows(rows: Sequence[Any]) -> list[str]:
    """`paused_types` rows as job types."""
    return [str(row["job_type"]) for row in rows]
