"""One in-process pool's traffic with the queue for its hold (jobs claimed ahead,
`claim_ahead.py`): the claims that fill it, under the pool's name and lease, and what each
answer says of the type's flow control - paused by an administrator (issue 14), or its start
limit full until when - and the jobs it hands back, or returns at a shutdown. Each move
holds `ahead.moving`.

The pool decides how many to claim, and starts the held jobs in its slots (`pool.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..config import PoolSettings, QueueSettings
from ..flow_control import flow_claim
from ..queue.store import Claim, FlowClaimed, JobStore, Lease
from .claim_ahead import ClaimAhead, hand_back
from .shutdown import return_to_queue

log = logging.getLogger(__name__)


class PoolClaims:
    """One pool's moves between the queue and its hold; its type's pause and start limit."""

    def __init__(
        self,
        job_type: str,
        claimant: str,
        settings: PoolSettings,
        queue: QueueSettings,
        store: JobStore,
    ) -> None:
        self.job_type = job_type
        # Who claims, in the attempt history (see `Pool`).
        self.claimant = claimant
        self.settings = settings
        self.queue = queue
        self.store = store
        # Claimed ahead (DEQUEUED, lease held), waiting for a free slot; oldest first.
        self.ahead = ClaimAhead()
        # An administrator paused this job type (issue 14): read from the store every poll
        # interval and learnt from each claim; a paused type starts no worker either.
        self.type_paused = False
        self._paused_read_at = float("-inf")
        self.limited_until = float("-inf")  # a start limit is full until then

    async def claim(self, wanted: int, now: float) -> int:
        """Claim up to `wanted` jobs into the hold and learn the type's pause and start limit;
        returns how many came."""
        async with self.ahead.moving:  # its jobs are in neither place until it is back
            self.ahead.claim_sent()
            try:
                claimed = await self.store.claim_flow(
                    flow_claim(self._claim_of(wanted, now), self.settings)
                )
            except BaseException:
                self.ahead.claim_back(0, wanted)
                raise
            self.ahead.claim_back(len(claimed.jobs), wanted)
            self.ahead.jobs.extend(claimed.jobs)
        self._learn(claimed)
        return len(claimed.jobs)

    async def hand_back_surplus(self, capacity: Callable[[], tuple[int, int]], now: float) -> None:
        """Hand the jobs held beyond the reach back to the queue; those that could not go back
        stay held. `capacity`: the pool's ready workers and their free slots, read once no
        other move is on its way."""
        async with self.ahead.moving:  # out of the hold, not PENDING until the requeue commits
            ready, free = capacity()
            surplus = self.ahead.take_surplus(free, ready)
            if surplus:
                self.ahead.jobs.extend(await hand_back(self.store, surplus, now, self.job_type))

    async def return_held(self, stopped: list[Lease], now: float) -> int:
        """At shutdown: requeue the held jobs (they never started) with `stopped`, the running
        jobs the shutdown stopped, in one commit, the attempts refunded; the hold is empty.
        Returns how many went back to PENDING. If the requeue fails, the held jobs are held
        again (a later call takes them)."""
        # Held until the requeue commits, as a hand-back is. No wait here goes round in a
        # circle: the pool's claims and hand-backs ended with its supervisor, so only a count
        # can hold `moving` now, and only across its reads; a count that waits for this
        # (holding other pools' locks) waits for this requeue alone, which takes no lock.
        async with self.ahead.moving:  # out of the hold, not PENDING until the requeue commits
            held = list(self.ahead.jobs)
            leases = [*stopped, *(Lease(job.session_id, job.attempt) for job in held)]
            self.ahead.jobs.clear()
            try:
                return await return_to_queue(self.store, leases, now)
            except BaseException:
                self.ahead.jobs.extend(held)
                raise

    async def give_back_held(self, now: float) -> int:
        """As a shutdown starts: `return_held` of the held jobs alone, for other nodes to run
        meanwhile. If that fails it is logged, and they stay held for the shutdown's end."""
        try:
            return await self.return_held([], now)
        except Exception:
            log.warning("could not give back the jobs claimed ahead yet", exc_info=True)
            return 0

    async def read_paused(self, now: float, stopping: bool) -> None:
        """Learn whether the type is paused (by any node) once a poll interval; while it is,
        mark its newly claimable jobs as waiting for that (unless the pool is `stopping`)."""
        if now >= self._paused_read_at + self.queue.poll_interval_s:
            self._paused_read_at = now
            self.type_paused = self.job_type in await self.store.paused_types()
        if self.type_paused and not stopping:
            claimed = await self.store.claim_flow(flow_claim(self._claim_of(0, now), self.settings))
            self.type_paused = claimed.paused

    def set_type_paused(self, paused: bool, now: float) -> None:
        """This node paused or resumed the type at `now`."""
        self.type_paused = paused
        self._paused_read_at = now

    def held_back(self, now: float) -> bool:
        """Whether the type is paused or its start limit full: more workers would only cost
        cold starts."""
        return self.type_paused or now < self.limited_until

    def _learn(self, claimed: FlowClaimed) -> None:
        self.type_paused = claimed.paused
        self.limited_until = claimed.retry_at if claimed.retry_at is not None else float("-inf")

    def _claim_of(self, limit: int, now: float) -> Claim:
        return Claim(
            job_type=self.job_type,
            limit=limit,
            # With several nodes, the node too: the rescuer names it if it is lost.
            worker_id=self.claimant,
            now=now,
            lease_expires_at=now + self.queue.lease_s,
        )
