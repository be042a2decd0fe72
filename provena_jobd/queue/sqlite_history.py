"""A job's attempt history on SQLite: the rows the triggers of 0006_attempt_history.sql write
in the same transaction as each status change (a read: see `JobStore.attempts`)."""

from __future__ import annotations

from ..models import Attempt
from .dialect import queries
from .rows import attempt_from_row
from .sqlite_waiting import Read

Q = queries("sqlite")


async def attempts(read: Read, session_id: str) -> list[Attempt]:
    """The job's attempts, oldest first."""
    return [attempt_from_row(row) for row in await read(Q["job_attempts"], (session_id,))]
