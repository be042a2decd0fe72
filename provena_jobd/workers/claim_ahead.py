"""A pool's jobs claimed ahead of need, how far ahead it claims, and handing back the rest.

Jobs claimed ahead are DEQUEUED (taken by a worker, not started) and wait in memory for a free
slot, so a slot that comes free starts its next job at once instead of waiting for a claim's
commit. The pool starts by claiming two per ready worker. When a slot still runs dry before
a claim is back and that claim comes back full (jobs shorter than a commit: they end before
the next claim can bring more), it claims twice as far ahead next time, up to
`AHEAD_MAX_PER_WORKER`; each claim with no slot run dry steps back by one, and a heartbeat
period without growth resets it to two.

At every heartbeat, after the reset, the jobs held beyond the reach (beyond what the free
slots take at once plus the reach per ready worker) go back to the queue, the newest claimed
first, with the attempt refunded and their place in the queue kept, as at a shutdown. So when
short jobs turn long, the up to 32 per worker claimed for them do not wait here behind long
jobs one slot at a time: within two heartbeat periods (2/3 of `lease_s`: the one they turned
in still had growth) they are PENDING again, and another node, idle, claims them at once.
Only jobs still waiting in the hold go back; a job leaves it as a slot starts it.

A job on its way between the queue and the hold waits all the same, yet a count of the waiting
jobs (PENDING in the database, plus those held) would miss it: a claim's jobs are DEQUEUED
once it commits, but join the hold only when its answer is back here, and a job handed back
(or returned at a shutdown) leaves the hold before its requeue commits. So every such move
holds `moving`, and a count holds it too: it waits for the move on its way (a commit), and
holds the next one off.
"""

from __future__ import annotations

import asyncio
import collections
import logging

from ..models import JobStatus
from ..queue.messages import HANDED_BACK
from ..queue.store import ClaimedJob, JobStore, Lease
from .shutdown import refunded

log = logging.getLogger(__name__)

AHEAD_PER_WORKER = 2  # jobs claimed ahead of need per ready worker, at least
AHEAD_MAX_PER_WORKER = 32  # ... and at most, for jobs shorter than a commit
# Jobs one claim takes at most. With hundreds of free slots, one huge claim makes the event
# loop and the writer take turns (all starts, then one long commit of all finishes); claims
# of this size keep both busy at once (in-process bench at 3 x 256: 6,550 -> 8,240 jobs/s).
CLAIM_AT_MOST = 128


class ClaimAhead:
    """The jobs claimed ahead, oldest first, and the pool's current reach."""

    def __init__(self) -> None:
        self.jobs: collections.deque[ClaimedJob] = collections.deque()
        self.per_worker = AHEAD_PER_WORKER
        self.claiming = False  # a claim is on its way to the database
        # Held by each move of jobs between the queue and the hold, and by a count of the
        # waiting jobs (see the module docstring).
        self.moving = asyncio.Lock()
        self._ran_dry = False  # a free slot found nothing held since the last claim came back
        self._left_more = False  # the last claim came back full: more jobs were waiting
        self._grew = False  # since the last heartbeat

    def wanted(self, free_slots: int, ready_workers: int) -> int:
        """How many jobs to claim now: the free slots, plus the reach, less what is held."""
        reach = self.per_worker * ready_workers
        return min(CLAIM_AT_MOST, free_slots + reach - len(self.jobs))

    def claim_sent(self) -> None:
        """A claim is on its way."""
        self.claiming = True

    def slot_found_none(self) -> None:
        """A free slot found nothing claimed ahead."""
        # It ran dry with jobs waiting: while a claim is on its way, or after the last one
        # came back full (it left more behind). Not an idle slot in an empty queue.
        if self.claiming or self._left_more:
            self._ran_dry = True

    def claim_back(self, claimed: int, wanted: int) -> None:
        """The claim came back: reach further if a slot ran dry since the last one and this
        one was full (more would have been there), else step back."""
        self.claiming = False
        if self._ran_dry and claimed >= wanted:
            self.per_worker = min(self.per_worker * 2, AHEAD_MAX_PER_WORKER)
            self._grew = True
        elif not self._ran_dry:
            self.per_worker = max(self.per_worker - 1, AHEAD_PER_WORKER)
        self._left_more = claimed >= wanted
        self._ran_dry = False

    def take_surplus(self, free_slots: int, ready_workers: int) -> list[ClaimedJob]:
        """Take out the jobs held beyond what the free slots take at once plus the reach, the
        newest claimed first (the oldest stay, to run next here). Out of `jobs` at once, so
        no slot can start one while it goes back."""
        keep = free_slots + self.per_worker * ready_workers
        surplus = []
        while len(self.jobs) > keep:
            surplus.append(self.jobs.pop())
        return surplus

    def heartbeat(self) -> None:
        """A heartbeat period passed: without growth in it, back to the minimum reach."""
        if not self._grew:
            self.per_worker = AHEAD_PER_WORKER
        self._grew = False


async def hand_back(
    store: JobStore, jobs: list[ClaimedJob], now: float, job_type: str
) -> list[ClaimedJob]:
    """Requeue jobs taken out of the hold as a shutdown does (`shutdown.return_to_queue`):
    claimable at `now`, the attempt refunded (they never started), their place in the queue
    kept (claims take the lowest `seq` first, and a requeue leaves it); all at once, so they
    share one commit. One INFO line says how many went back.

    Returns those whose requeue failed, oldest first: they are still held (DEQUEUED under
    this pool's lease) and go back into the hold. Should such a requeue have applied after
    all, the job still runs once: only one start of a DEQUEUED job succeeds, and a start of a
    PENDING one fails.
    """
    requeues = [refunded(Lease(job.session_id, job.attempt), now, HANDED_BACK) for job in jobs]
    # Each job's own outcome: one failed requeue must not hide which others went back.
    outcomes = await asyncio.gather(*map(store.requeue, requeues), return_exceptions=True)
    # A job not PENDING now was cancelled or rescued meanwhile: it is not ours either way.
    returned = sum(1 for outcome in outcomes if outcome is JobStatus.PENDING)
    failed = [
        (job, error)
        for job, error in zip(jobs, outcomes, strict=True)
        if isinstance(error, BaseException)
    ]
    if returned:
        log.info(
            "handed %d %s jobs claimed ahead back to the queue (held beyond the pool's reach)",
            returned,
            job_type,
            extra={"action": "claimed_ahead_returned", "job_type": job_type, "jobs": returned},
        )
    if failed:
        log.warning(
            "could not hand %d %s jobs claimed ahead back to the queue; they stay here: %s",
            len(failed),
            job_type,
            failed[0][1],
            extra={"action": "hand_back_failed", "job_type": job_type},
        )
    return [job for job, _ in reversed(failed)]
