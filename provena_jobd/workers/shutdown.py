"""What a shutdown does with the jobs this node holds: back to the queue, attempt refunded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from ..queue.store import JobStore, Lease, Requeue

SHUTDOWN_INFO = "Returned to the queue: jobd shut down before the job finished."


async def return_to_queue(store: JobStore, leases: Iterable[Lease], now: float) -> None:
    """Requeue held jobs at `now`, refunding the attempt (a shutdown is not the job's
    failure); all at once, so they share one commit instead of one each."""
    await asyncio.gather(
        *(
            store.requeue(
                Requeue(
                    session_id=lease.session_id,
                    attempt=lease.attempt,
                    info=SHUTDOWN_INFO,
                    run_after=now,
                    now=now,
                    refund=True,
                )
            )
            for lease in leases
        )
    )
