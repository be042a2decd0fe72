"""A shutdown's end for the jobs a node holds: running ones get the grace period to finish,
and held jobs that never ran (or were stopped) through no fault of theirs go back to the
queue, attempt refunded.

A shutdown returns what this node holds; the worker gateway returns what it claimed for an
outside worker that left before it was answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass

from ..clock import Clock
from ..models import JobStatus
from ..queue.messages import SHUTDOWN
from ..queue.store import JobStore, Lease, Requeue
from .handler_watch import CANCEL_GRACE_S

log = logging.getLogger(__name__)


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


@dataclass(slots=True)
class ShutdownTally:
    """What a shutdown did with a pool's jobs: how many of those running finished in the
    grace period, and how many went back to PENDING (stopped, or claimed ahead)."""

    finished: int = 0
    returned: int = 0

    def add(self, finished: int, returned: int) -> None:
        """Count one drain more (a process pool is drained twice: its outside workers'
        stop, then jobd's)."""
        self.finished += finished
        self.returned += returned


async def return_to_queue(
    store: JobStore, leases: Iterable[Lease], now: float, info: str = SHUTDOWN
) -> int:
    """Requeue held jobs at `now` with `info`, refunding the attempt (a shutdown is not the
    job's failure); all at once, so they share one commit instead of one each. Returns how
    many went back to PENDING (not one cancelled or rescued meanwhile)."""
    outcomes = await asyncio.gather(
        *(store.requeue(refunded(lease, now, info)) for lease in leases)
    )
    return sum(1 for outcome in outcomes if outcome is JobStatus.PENDING)


async def stop_after_grace(
    clock: Clock,
    jobs: list[asyncio.Future[None]],
    grace_s: float,
    hurry: asyncio.Event,
    stop: Callable[[list[asyncio.Future[None]]], object],
) -> list[asyncio.Future[None]]:
    """Give running jobs `grace_s` of `clock` time to finish (less once `hurry` is set: a
    second Ctrl-C), then `stop` the rest (all at once); returns those.

    Each job is a future that resolves once its attempt is over (whichever task ends it:
    see `JobRunner.run`'s `hand_off`). A stopped job's handler may ignore the cancel: it gets
    `CANCEL_GRACE_S`, as any stopped handler does, and is then left running; the caller
    requeues its job.
    """
    if jobs and not hurry.is_set():
        all_done = asyncio.ensure_future(asyncio.wait(set(jobs)))
        hurried = asyncio.ensure_future(hurry.wait())
        try:
            await clock.wait_for(
                asyncio.wait({all_done, hurried}, return_when=asyncio.FIRST_COMPLETED),
                grace_s,
            )
        except TimeoutError:
            pass
        finally:
            for waiter in (all_done, hurried):
                waiter.cancel()
            await asyncio.gather(all_done, hurried, return_exceptions=True)
    unfinished = [job for job in jobs if not job.done()]
    if unfinished:
        stop(unfinished)
        with contextlib.suppress(TimeoutError):
            await clock.wait_for(asyncio.wait(unfinished), CANCEL_GRACE_S)
    return unfinished


@contextlib.asynccontextmanager
async def renewing(
    clock: Clock, period_s: float, renew: Callable[[float], Awaitable[None]]
) -> AsyncIterator[None]:
    """`renew(now)` every `period_s` while the block runs: a draining pool's leases, once its
    supervisor, which renewed them, is over. A failed renewal is logged; the next may work."""

    async def keep_renewing() -> None:
        while True:
            await clock.sleep(period_s)
            try:
                await renew(clock.now())
            except Exception:
                log.warning("renewing leases while draining failed", exc_info=True)

    task = asyncio.create_task(keep_renewing(), name="renewing-leases")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
