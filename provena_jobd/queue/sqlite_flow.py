"""Scheduling and flow control on SQLite: keyed launches, pause, start limits, schedule fires.

Each function is a step of the group-commit writer (like `sqlite_prune`): it gets the
connection inside the open transaction and a list of requests, so a check and the write
it decides on can never be split by another writer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import msgspec

from ..clock import rounded_to_ms
from . import sqlite_steps as steps
from .dialect import queries
from .rows import earlier_launch_from_row, launched
from .start_windows import allowance, counted, limited, reopens_at
from .store import (
    Claim,
    ClaimedJob,
    FlowClaim,
    FlowClaimed,
    KeyedLaunch,
    LaunchOutcome,
    NewJob,
    Pause,
    ScheduleFire,
)

Q = queries("sqlite")


def _insert(connection: sqlite3.Connection, job: NewJob, info: str | None) -> None:
    if info is not None:
        job = msgspec.structs.replace(job, info=info)
    steps.insert_jobs(connection, [[job]])


def _claim(connection: sqlite3.Connection, claim: Claim) -> list[ClaimedJob]:
    return steps.claim(connection, [claim])[0]


def launch_once_step(
    connection: sqlite3.Connection, launches: Sequence[KeyedLaunch]
) -> list[LaunchOutcome]:
    """Launch each job unless its idempotency key already launched one."""
    outcomes = []
    for launch in launches:
        job, key = launch.job, launch.key
        if key is not None:
            connection.execute(Q["expire_launch_keys"], (key.now,))
            inserted = connection.execute(
                Q["insert_launch_key"],
                (
                    key.username,
                    key.key,
                    key.fingerprint,
                    job.session_id,
                    job.batch_id,
                    key.expires_at,
                ),
            ).rowcount
            if not inserted:
                row = connection.execute(Q["get_launch_key"], (key.username, key.key)).fetchone()
                outcomes.append(earlier_launch_from_row(row))
                continue
        _insert(connection, job, launch.info)
        outcomes.append(launched(launch))
    return outcomes


def _hold(connection: sqlite3.Connection, job_type: str, info: str, now: float) -> list[str]:
    rows = connection.execute(
        Q["hold_waiting"], {"info": info, "job_type": job_type, "now": now}
    ).fetchall()
    return [row[0] for row in rows]


def claim_flow_step(
    connection: sqlite3.Connection, flows: Sequence[FlowClaim]
) -> list[tuple[FlowClaimed, list[str]]]:
    """Claim within pause and start limits; also the ids of jobs whose info now says why
    they wait."""
    results = []
    for flow in flows:
        claim = flow.claim
        if connection.execute(Q["is_paused"], (claim.job_type,)).fetchone():
            paused = _hold(connection, claim.job_type, flow.paused_info, claim.now)
            results.append((FlowClaimed(jobs=[], paused=True), paused))
            continue
        # An unlimited type has no windows to read or keep (the claim's hot path).
        rows = (
            connection.execute(Q["start_windows"], (claim.job_type,)).fetchall()
            if limited(flow.limits)
            else []
        )
        counts = {length: (start, count) for length, start, count in rows}
        # Checked and counted at the claimed_at the claimed rows get (see `given_back`).
        at = rounded_to_ms(claim.now)
        allowed = allowance(at, flow.limits, counts)
        limit = min(claim.limit, allowed)
        jobs = _claim(connection, msgspec.structs.replace(claim, limit=limit)) if limit else []
        windows = counted(at, flow.limits, counts, len(jobs))
        if windows:
            connection.executemany(
                Q["put_start_window"],
                [(claim.job_type, length, start, n) for length, (start, n) in windows.items()],
            )
        held_back = allowed < claim.limit and bool(
            connection.execute(Q["any_claimable"], (claim.job_type, claim.now)).fetchone()
        )
        held: list[str] = []
        retry_at = None
        if held_back:
            held = _hold(connection, claim.job_type, flow.limited_info, claim.now)
            retry_at = reopens_at(at, flow.limits, windows)
        results.append((FlowClaimed(jobs=jobs, limited=held_back, retry_at=retry_at), held))
    return results


def set_paused_step(connection: sqlite3.Connection, pauses: Sequence[Pause]) -> list[list[str]]:
    """Pause (marking the claimable jobs) or resume (clearing that mark)."""
    results = []
    for pause in pauses:
        if pause.paused:
            connection.execute(Q["insert_paused"], (pause.job_type, pause.now))
            results.append(_hold(connection, pause.job_type, pause.info, pause.now))
        else:
            connection.execute(Q["delete_paused"], (pause.job_type,))
            rows = connection.execute(
                Q["release_waiting"], {"job_type": pause.job_type, "info": pause.info}
            ).fetchall()
            results.append([row[0] for row in rows])
    return results


def fire_schedule_step(connection: sqlite3.Connection, fires: Sequence[ScheduleFire]) -> list[bool]:
    """Record each due time once; launch its job only if this call recorded it."""
    results = []
    for fire in fires:
        session_id = fire.job.session_id if fire.job else None
        recorded = connection.execute(
            Q["insert_schedule_fire"], (fire.schedule, fire.due_at, session_id)
        ).rowcount
        if recorded and fire.job is not None:
            _insert(connection, fire.job, None)
        results.append(bool(recorded))
    return results
