"""The rescuer: jobs whose worker was lost go back to the queue, or fail past max_attempts
(or if cancelled while they ran: a cancelled job never runs again)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..clock import Clock
from ..config import QueueSettings
from ..models import JobStatus
from ..queue.store import Backoff, JobStore, Rescue, Rescued

log = logging.getLogger(__name__)


class Rescuer:
    """Sweeps expired leases every `interval_s`; `run_once` is what tests call."""

    def __init__(
        self,
        store: JobStore,
        queue: QueueSettings,
        clock: Clock,
        notify: Callable[[str], None],
    ) -> None:
        self.store = store
        self.clock = clock
        self.interval_s = queue.rescue_interval_s
        self.notify = notify
        self.backoff = Backoff(base_s=queue.backoff_base_s, max_s=queue.backoff_max_s)

    async def run_once(self) -> list[Rescued]:
        """Rescue the jobs whose lease has expired."""
        now = self.clock.now()
        rescued = await self.store.rescue(Rescue(now=now, horizon=now, backoff=self.backoff))
        self._announce(rescued, "rescued %d jobs of lost workers", "jobs_rescued")
        return rescued

    def _announce(self, rescued: list[Rescued], message: str, action: str) -> None:
        """Wake the pools of the requeued jobs' types, and log what became of them."""
        requeued = [r for r in rescued if r.status is JobStatus.PENDING]
        for job_type in {r.job_type for r in requeued}:
            self.notify(job_type)
        if rescued:
            # Who held them: with several nodes, which node was lost.
            holders = sorted({r.worker_id for r in rescued if r.worker_id})
            log.warning(
                message + " (%d requeued, %d ended FAILED: out of attempts or cancelled; "
                "held by %s)",
                len(rescued),
                len(requeued),
                len(rescued) - len(requeued),
                ", ".join(holders) or "unknown",
                extra={"action": action},
            )

    async def recover(self, job_types: list[str]) -> list[Rescued]:
        """At startup: requeue what the previous process held, as suspects of its death.

        `job_types` are those run by in-process workers; see `JobStore.recover`.
        """
        rescued = await self.store.recover(self.clock.now(), job_types)
        self._announce(
            rescued, "recovered %d jobs held when jobd last stopped unexpectedly", "jobs_recovered"
        )
        return rescued

    async def run_forever(self) -> None:
        """Sweep until cancelled."""
        while True:
            await self.clock.sleep(self.interval_s)
            try:
                await self.run_once()
            except Exception:
                log.exception("rescue failed", extra={"action": "rescue_failed"})
