"""Held jobs that never ran through any fault of theirs: back to the queue, attempt refunded.

A shutdown returns what this node holds; the worker gateway returns what it claimed for an
outside worker that left before it was answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from ..queue.messages import SHUTDOWN
from ..queue.store import JobStore, Lease, Requeue


def refunded(lease: Lease, now: float, info: str) -> Requeue:
    """The requeue of a held job that never ran by its own fault: claimable at `now`, its
    attempt refunded, its place in its queue kept (claims take the oldest launch first)."""
    return Requeue(
        session_id=lease.session_id,
        attempt=lease.attempt,
        info=info,
        run_after=now,
        now=now,
        refund=True,
    )


async def return_to_queue(
    store: JobStore, leases: Iterable[Lease], now: float, info: str = SHUTDOWN
) -> None:
    """Requeue held jobs at `now` with `info`, refunding the attempt (a shutdown is not the
    job's failure); all at once, so they share one commit instead of one each."""
    await asyncio.gather(*(store.requeue(refunded(lease, now, info)) for lease in leases))
