"""Where a waiting job stands in its queue, on SQLite (a read: see `JobStore.queue_place`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..models import JobStatus
from .dialect import queries
from .store import QueuePlace

Q = queries("sqlite")
Read = Callable[[str, Any], Awaitable[list[Sequence[Any]]]]


async def queue_place(read: Read, session_id: str, now: float) -> QueuePlace | None:
    """The job's status, type, back-off, whether it was ever claimed, and the jobs of its type
    ahead of it."""
    rows = await read(Q["queue_place"], {"session_id": session_id, "now": now})
    if not rows:
        return None
    status, job_type, run_after, attempted, ahead = rows[0]
    return QueuePlace(
        status=JobStatus(status),
        job_type=job_type,
        run_after=run_after,
        ahead=ahead,
        attempted=bool(attempted),  # SQLite answers 0 or 1
    )
