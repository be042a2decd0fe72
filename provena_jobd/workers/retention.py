"""Retention: a background sweep that deletes finished jobs older than `keep_finished_s`.

Each pass deletes about `batch_size` jobs in one short write transaction, then rests as long
as the pass took, so launches and claims never wait behind a long delete and the queue's own
writes keep at least half of the writer's time.
"""

from __future__ import annotations

import asyncio
import logging

from ..clock import Clock, monotonic, rounded_to_ms
from ..config import RetentionSettings
from ..queue.store import JobStore, Prune, Pruned

log = logging.getLogger(__name__)


class Pruner:
    """Sweeps every `interval_s`; `run_once(now)` is one whole sweep, for tests."""

    def __init__(self, store: JobStore, clock: Clock, settings: RetentionSettings) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings

    async def run_once(self, now: float) -> Pruned:
        """Delete every job (batch, workflow) that finished before `now - keep_finished_s`."""
        keep = self.settings.keep_finished_s
        assert keep != "forever", "retention is off"
        before = now - keep
        jobs = records = batches = 0
        after: tuple[float, int] | None = None
        while True:
            started = monotonic()
            pruned = await self.store.prune(
                Prune(before=before, limit=self.settings.batch_size, after=after)
            )
            took = monotonic() - started
            jobs, records, batches = (
                jobs + pruned.jobs,
                records + pruned.records,
                batches + pruned.batches,
            )
            after = pruned.after
            if after is None:
                break
            # Pace the sweep: rest as long as the pass took, so the queue's own writes get
            # the writer at least half the time. Real time: this guards throughput only.
            await asyncio.sleep(took)
        if jobs:
            log.info(
                "pruned %d finished jobs (and %d records) that ended before %s",
                jobs,
                records,
                rounded_to_ms(before),  # as every epoch time jobd shows
                extra={"action": "jobs_pruned", "jobs": jobs, "records": records},
            )
        return Pruned(jobs=jobs, records=records, batches=batches, after=None)

    async def run_forever(self) -> None:
        """Sweep until cancelled."""
        while True:
            await self.clock.sleep(self.settings.interval_s)
            try:
                await self.run_once(self.clock.now())
            except Exception:
                log.exception("pruning failed", extra={"action": "prune_failed"})
