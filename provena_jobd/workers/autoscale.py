"""Pure scaling decisions for a worker pool: how many workers to start, which to retire.

No I/O and no clock reads: the pool passes in what it sees and the time, and tests drive
these with tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .pool_workers import Worker, WorkerState


@dataclass(frozen=True)
class PoolView:
    """What the pool sees when it decides."""

    waiting: int  # claimable jobs still PENDING after this round's claims
    provisioning: int  # workers still in their cold start
    ready: int  # workers that have finished their cold start
    free_slots: int  # job slots free on ready workers


def workers_to_start(view: PoolView, max_workers: int, concurrency: int) -> int:
    """Start enough workers to cover the waiting jobs that no slot will take, up to the cap.

    Provisioning workers count as coming capacity, so a burst does not start a worker per job.
    """
    uncovered = view.waiting - view.free_slots - view.provisioning * concurrency
    if uncovered <= 0:
        return 0
    room = max_workers - view.provisioning - view.ready
    return max(0, min(room, math.ceil(uncovered / concurrency)))


def should_retire(running: int, idle_since: float, now: float, idle_timeout_s: float) -> bool:
    """A worker stops after `idle_timeout_s` without work, counted from its last job's end."""
    return running == 0 and now - idle_since >= idle_timeout_s


def idle_deadline(idle_since: float, idle_timeout_s: float) -> float:
    """When an idle worker will retire if no job comes."""
    return idle_since + idle_timeout_s


def next_wake(
    due: list[float], workers: Sequence[Worker], now: float, idle_timeout_s: float
) -> float:
    """The earliest of `due` and each worker's next change of state: a provisioning one's end
    of cold start, an idle one's retirement."""
    deadlines = list(due)
    for worker in workers:
        if worker.state(now) is WorkerState.PROVISIONING:
            deadlines.append(worker.ready_at)
        elif not worker.running:
            deadlines.append(idle_deadline(worker.idle_since, idle_timeout_s))
    return min(deadlines)
