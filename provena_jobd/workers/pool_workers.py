"""A pool's simulated workers, and how they are shown (the jobs panel, `/admin/pool`).

A worker stands in for one of the reference's ECS tasks: provisioning until its cold start is
over, then idle or busy. With several nodes, each holds a cluster-wide slot, and the panel
lists the workers of every node.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass, field

from ..pool_models import WorkerInfo
from ..queue.store import Lease
from ..queue.worker_slots import WorkerSlots

log = logging.getLogger(__name__)


class WorkerState(enum.StrEnum):
    """What a worker is doing."""

    PROVISIONING = "provisioning"
    IDLE = "idle"
    BUSY = "busy"


@dataclass
class Worker:
    """A simulated worker task of one pool."""

    worker_id: str
    ready_at: float
    idle_since: float
    running: dict[asyncio.Task[None], Lease] = field(default_factory=dict)
    busy_since: float = 0.0  # when its running jobs went from none to some
    slot: int | None = None  # its cluster-wide worker slot (several nodes on PostgreSQL)

    def state(self, now: float) -> WorkerState:
        """Provisioning until ready, then busy while it runs anything."""
        if now < self.ready_at:
            return WorkerState.PROVISIONING
        return WorkerState.BUSY if self.running else WorkerState.IDLE


def list_workers(
    workers: list[Worker], cold_start_s: float, now: float, node: str | None
) -> list[WorkerInfo]:
    """Each worker: its state, since when, and when a provisioning one is ready."""
    listed = []
    for worker in workers:
        state = worker.state(now)
        since = {
            WorkerState.PROVISIONING: worker.ready_at - cold_start_s,
            WorkerState.IDLE: max(worker.idle_since, worker.ready_at),
            WorkerState.BUSY: worker.busy_since,
        }[state]
        listed.append(
            WorkerInfo(
                worker_id=worker.worker_id,
                state=state.value,
                jobs=len(worker.running),
                since=since,
                ready_at=worker.ready_at,
                node=node,
            )
        )
    return listed


async def cluster_workers(
    slots: WorkerSlots | None, job_type: str, workers: list[Worker], now: float
) -> list[WorkerInfo]:
    """With several nodes: every worker of this type in the cluster, with its node."""
    if slots is None:
        return []
    here = {w.slot: w for w in workers}
    shown = []
    for holder in await slots.holders():
        if holder.job_type != job_type:
            continue
        local = here.get(holder.slot) if holder.node == slots.node else None
        shown.append(
            WorkerInfo(
                worker_id=f"{job_type}-{holder.slot}",
                state=local.state(now).value if local else "on another node",
                jobs=len(local.running) if local else 0,
                node=holder.node,
            )
        )
    return shown


async def renew_slots(
    slots: WorkerSlots, job_type: str, workers: list[Worker], until: float
) -> None:
    """Keep the cluster slots of `workers` until `until`; an idle worker whose slot another
    node took over (past its lease) is removed from `workers`."""
    slotted = [w for w in workers if w.slot is not None]
    if not slotted:
        return
    held = await slots.renew(job_type, [w.slot for w in slotted if w.slot is not None], until)
    for worker in slotted:
        if worker.slot not in held and not worker.running:
            workers.remove(worker)
            log.warning("worker lost its slot", extra={"action": "worker_slot_lost"})


async def release_slots(slots: WorkerSlots, job_type: str, workers: list[Worker]) -> None:
    """Give the cluster back the slots of stopped `workers`. A failure is logged, not raised:
    a slot not given back runs out with its lease."""
    numbers = [w.slot for w in workers if w.slot is not None]
    if numbers:
        try:
            await slots.release(job_type, numbers)
        except Exception:
            log.warning("could not give back %d worker slots", len(numbers), exc_info=True)
