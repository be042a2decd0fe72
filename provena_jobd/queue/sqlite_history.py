"""A job's attempt history on SQLite: the rows the triggers of 0006_attempt_history.sql write
in the same transaction as each status change (a read: see `JobStore.attempts`)."""

from __future__ import annotations

from ..models import Attempt
from .sql import queries
from .sqlite_waiting import Read

Q = queries("sqlite")


async def attempts(read: Read, session_id: str) -> list[Attempt]:
    """The job's attempts, oldest first."""
    rows = await read(Q["job_attempts"], (session_id,))
    return [
        Attempt(
            attempt=row[0],
            worker_id=row[1],
            node=row[2],
            claimed_at=row[3],
            started_at=row[4],
            ended_at=row[5],
            outcome=row[6],
            info=row[7],
            retry_at=row[8],
        )
        for row in rows
    ]
