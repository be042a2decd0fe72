"""Rows to domain structs, by column name: the same for every backend (a `sqlite3.Row` and
an asyncpg `Record` are both read as `row["column"]`)."""

from __future__ import annotations

from typing import Any

import msgspec

from ..models import NULL_RAW, Attempt, Job, JobStatus
from .store import (
    ClaimedJob,
    InvalidPosition,
    KeyedLaunch,
    LastFire,
    LaunchOutcome,
    ListScope,
    NewJob,
    NewRecord,
    Position,
    QueuePlace,
)


def job_from_row(row: Any) -> Job:
    """A job from a `jobs` row."""
    result = row["result"]
    return Job(
        session_id=row["session_id"],
        created_timestamp=row["created_timestamp"],
        username=row["username"],
        batch_id=row["batch_id"],
        payload=msgspec.Raw(row["payload"]),
        job_type=row["job_type"],
        job_sub_type=row["job_sub_type"],
        status=JobStatus(row["status"]),
        info=row["info"],
        result=NULL_RAW if result is None else msgspec.Raw(result),
        started_timestamp=row["started_timestamp"],
        finished_timestamp=row["finished_timestamp"],
        attempt=row["attempt"],
        parent_session_id=row["parent_session_id"],
        retry_of=row["retry_of"],
        progress=row["progress"],
    )


def claimed_from_row(row: Any) -> ClaimedJob:
    """A claimed job from a claim's RETURNING row."""
    return ClaimedJob(
        session_id=row["session_id"],
        created_timestamp=row["created_timestamp"],
        username=row["username"],
        batch_id=row["batch_id"],
        job_type=row["job_type"],
        job_sub_type=row["job_sub_type"],
        payload=bytes(row["payload"]),
        attempt=row["attempt"],
        max_attempts=row["max_attempts"],
    )


def earlier_launch_from_row(row: Any) -> LaunchOutcome:
    """What a `launch_keys` row says its key launched first (nothing is launched again)."""
    return LaunchOutcome(
        session_id=row["session_id"],
        batch_id=row["batch_id"],
        fingerprint=row["fingerprint"],
        launched=False,
    )


def launched(launch: KeyedLaunch) -> LaunchOutcome:
    """The outcome of a keyed launch that did insert its job."""
    return LaunchOutcome(
        session_id=launch.job.session_id,
        batch_id=launch.job.batch_id,
        fingerprint=launch.key.fingerprint if launch.key else None,
        launched=True,
    )


def last_fires_from_rows(rows: Any) -> dict[str, LastFire]:
    """`last_fires` rows (schedule, due_at, session_id) as each schedule's latest fire."""
    return {
        str(row["schedule"]): LastFire(due_at=float(row["due_at"]), session_id=row["session_id"])
        for row in rows
    }


def attempt_from_row(row: Any) -> Attempt:
    """One attempt from a `job_attempts` row."""
    return Attempt(
        attempt=row["attempt"],
        worker_id=row["worker_id"],
        node=row["node"],
        claimed_at=row["claimed_at"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        outcome=row["outcome"],
        info=row["info"],
        retry_at=row["retry_at"],
    )


def new_job_row(job: NewJob) -> tuple[Any, ...]:
    """A launched job's values in the column order of every backend's insert statement."""
    return (
        job.session_id,
        job.created_timestamp,
        job.username,
        job.batch_id,
        job.job_type,
        job.job_sub_type,
        job.payload,
        job.max_attempts,
        job.run_after,
        job.parent_session_id,
        job.retry_of,
        job.info,
    )


def queue_place_from_row(row: Any) -> QueuePlace:
    """A waiting job's place from a `queue_place` row (SQLite answers 0 or 1 for booleans)."""
    return QueuePlace(
        status=JobStatus(row["status"]),
        job_type=row["job_type"],
        run_after=row["run_after"],
        ahead=row["ahead"],
        attempted=bool(row["attempted"]),
        paused=bool(row["paused"]),
    )


def record_from_row(row: Any) -> NewRecord:
    """A handler's record from a `records_mentioning` row."""
    return NewRecord(
        record_id=row["record_id"],
        kind=row["kind"],
        session_id=row["session_id"],
        username=row["username"],
        data=msgspec.json.decode(row["data"]),
        created=row["created"],
    )


def position_seq(rows: list[Any], scope: ListScope, after: Position) -> int:
    """The `seq` a list resumes after, from the `get_position` rows of `after`'s job; refused
    (`InvalidPosition`) unless that job exists and belongs to the list `scope` walks."""
    if not rows:
        raise InvalidPosition(after.session_id)
    row = rows[0]
    if (
        row["created_timestamp"] != after.created_timestamp
        or (scope.username is not None and row["username"] != scope.username)
        or (scope.batch_id is not None and row["batch_id"] != scope.batch_id)
    ):
        raise InvalidPosition(after.session_id)
    return int(row["seq"])
