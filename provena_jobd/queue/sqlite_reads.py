"""The SQLite store's read side: every query of `JobStore`, none of its writes.

Reads run on the store's own read-only connection (`SqliteStore._read`, sqlite.py, which
owns it and adds the group-commit writes and the file's lifecycle): with WAL they never wait
for the writer, and see only committed rows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from ..models import Attempt, Job, JobStatus
from .dialect import queries
from .list_query import list_sql
from .rows import (
    attempt_from_row,
    job_from_row,
    last_fires_from_rows,
    position_seq,
    queue_place_from_row,
    record_from_row,
)
from .store import (
    LastFire,
    ListScope,
    NewRecord,
    Page,
    Position,
    QueuePlace,
)

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


class SqliteReads(ABC):
    """The queries of a `JobStore` on SQLite; `SqliteStore` runs them on its reader."""

    @abstractmethod
    async def _read(
        self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[Any]:
        """The rows of one query (sqlite3.Row, read by column name or position)."""

    async def get(self, session_id: str) -> Job | None:
        """One job by id."""
        rows = await self._read(Q["get_job"], (session_id,))
        return job_from_row(rows[0]) if rows else None

    async def batch_owner(self, batch_id: str) -> str | None:
        """The batch's creator."""
        rows = await self._read(Q["get_batch_owner"], (batch_id,))
        return str(rows[0][0]) if rows else None

    async def list_jobs(self, scope: ListScope, limit: int, after: Position | None) -> Page:
        """A keyset page, newest first."""
        position = None
        if after is not None:
            position = (after.created_timestamp, await self._position(scope, after))
        sql, parameters = list_sql("sqlite", scope, _JOB_COLUMNS, limit, position)
        rows = await self._read(sql, parameters)
        jobs = [job_from_row(row) for row in rows[:limit]]
        return Page(jobs, more=len(rows) > limit)

    async def _position(self, scope: ListScope, after: Position) -> int:
        rows = await self._read(Q["get_position"], (after.session_id,))
        return position_seq(rows, scope, after)

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
        return [job_from_row(row) for row in rows]

    async def records_mentioning(self, text: str, limit: int) -> list[NewRecord]:
        """Records with the id `text` or whose JSON mentions it."""
        rows = await self._read(Q["records_mentioning"], (text, limit))
        return [record_from_row(row) for row in rows]

    async def paused_types(self) -> list[str]:
        """Paused job types."""
        return [str(row[0]) for row in await self._read(Q["paused_types"])]

    async def last_fires(self) -> dict[str, LastFire]:
        """The latest due time recorded per schedule."""
        return last_fires_from_rows(await self._read(Q["last_fires"]))

    async def queue_place(self, session_id: str, now: float) -> QueuePlace | None:
        """Where a job stands in its type's queue."""
        rows = await self._read(Q["queue_place"], {"session_id": session_id, "now": now})
        return queue_place_from_row(rows[0]) if rows else None

    async def attempts(self, session_id: str) -> list[Attempt]:
        """A job's attempts, oldest first (written by the triggers of migration 0006)."""
        return [attempt_from_row(row) for row in await self._read(Q["job_attempts"], (session_id,))]
