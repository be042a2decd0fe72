"""The PostgreSQL store's read side: every query of `JobStore`, none of its writes.

Each read runs on a connection of the store's pool, sees only committed rows (every node's),
and is tried once more on a new connection if the first is dropped (`PostgresStore._fetch`,
postgres.py, which owns the pool and adds the writes, the change feed and the lifecycle).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from ..models import Attempt, Job, JobStatus
from .dialect import queries
from .list_query import list_sql
from .postgres_flow import paused_from_rows
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

Q = queries("postgres")


class PostgresReads(ABC):
    """The queries of a `JobStore` on PostgreSQL; `PostgresStore` runs them on its pool."""

    @abstractmethod
    async def _fetch(self, sql: str, *parameters: Any) -> list[Any]:
        """The rows of one query (asyncpg records, read by column name)."""

    async def get(self, session_id: str) -> Job | None:
        """One job by id."""
        rows = await self._fetch(Q["get_job"], session_id)
        return job_from_row(rows[0]) if rows else None

    async def batch_owner(self, batch_id: str) -> str | None:
        """The batch's creator."""
        rows = await self._fetch(Q["get_batch_owner"], batch_id)
        return str(rows[0]["username"]) if rows else None

    async def list_jobs(self, scope: ListScope, limit: int, after: Position | None) -> Page:
        """A keyset page, newest first (see list_query.py)."""
        position = None
        if after is not None:
            position = (after.created_timestamp, await self._position(scope, after))
        sql, parameters = list_sql("postgres", scope, "*", limit, position)
        rows = await self._fetch(sql, *parameters)
        return Page([job_from_row(row) for row in rows[:limit]], more=len(rows) > limit)

    async def _position(self, scope: ListScope, after: Position) -> int:
        rows = await self._fetch(Q["get_position"], after.session_id)
        return position_seq(rows, scope, after)

    async def count_waiting(self, job_type: str, now: float, cap: int) -> int:
        """Claimable jobs of a type, up to `cap`."""
        rows = await self._fetch(Q["count_waiting"], job_type, now, cap)
        return int(rows[0][0])

    async def waiting_by_type(self) -> dict[str, int]:
        """PENDING jobs per type."""
        rows = await self._fetch(Q["waiting_by_type"])
        return {str(row["job_type"]): int(row["count"]) for row in rows}

    async def batch_counts(self, batch_id: str) -> dict[JobStatus, int]:
        """Jobs of a batch per status."""
        rows = await self._fetch(Q["batch_counts"], batch_id)
        return {JobStatus(row["status"]): int(row["count"]) for row in rows}

    async def workflow(self, session_id: str, limit: int) -> list[Job]:
        """The root of a job's chain and everything launched from it, oldest first."""
        roots = await self._fetch(Q["workflow_root"], session_id)
        if not roots:
            return []
        rows = await self._fetch(Q["workflow_steps"], roots[0]["session_id"], limit)
        return [job_from_row(row) for row in rows]

    async def records_mentioning(self, text: str, limit: int) -> list[NewRecord]:
        """Records with the id `text` or whose JSON mentions it."""
        rows = await self._fetch(Q["records_mentioning"], text, limit)
        return [record_from_row(row) for row in rows]

    async def paused_types(self) -> list[str]:
        """Paused job types, sorted."""
        return paused_from_rows(await self._fetch(Q["paused_types"]))

    async def last_fires(self) -> dict[str, LastFire]:
        """The latest due time recorded per schedule."""
        return last_fires_from_rows(await self._fetch(Q["last_fires"]))

    async def queue_place(self, session_id: str, now: float) -> QueuePlace | None:
        """Where a job stands in its type's queue, counted over every node's claims."""
        rows = await self._fetch(Q["queue_place"], session_id, now)
        if not rows:
            return None
        return queue_place_from_row(rows[0])

    async def attempts(self, session_id: str) -> list[Attempt]:
        """A job's attempts, oldest first (written by the triggers of migration 0006)."""
        return [attempt_from_row(row) for row in await self._fetch(Q["job_attempts"], session_id)]
