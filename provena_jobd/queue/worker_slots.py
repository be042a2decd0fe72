"""Cluster-wide worker slots: `max_workers` per job type counts every node's workers.

A count under SKIP LOCKED is not enough when nodes race (both count 2 of 3 and both start a
worker), so each worker holds one numbered slot, a row under the primary key
(job_type, slot) with slot in 1..max_workers: the database lets only one node have each
number. A node renews its slots with its job leases; a dead node's slots expire after
`lease_s` and any node may take them.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from .dialect import queries
from .postgres import PostgresStore

Q = queries("postgres")


class SlotHolder(msgspec.Struct, frozen=True, kw_only=True):
    """A worker slot and the node that hosts its worker."""

    job_type: str
    slot: int
    node: str
    started: float
    expires_at: float


class WorkerSlots(Protocol):
    """Where a pool takes, renews and gives back its workers' slots."""

    node: str

    async def take(
        self, job_type: str, max_workers: int, now: float, expires_at: float
    ) -> int | None:
        """A free slot number for a new worker, or None when the cluster has `max_workers`."""
        ...

    async def renew(self, job_type: str, slots: list[int], expires_at: float) -> set[int]:
        """Heartbeat; the slots this node still holds (a slot it lost was taken over)."""
        ...

    async def release(self, job_type: str, slots: list[int]) -> None:
        """Give slots back (their workers stopped)."""
        ...

    async def holders(self) -> list[SlotHolder]:
        """Every slot held in the cluster, by job type and number."""
        ...


class PostgresWorkerSlots:
    """`WorkerSlots` in the `worker_slots` table (migration 0002)."""

    def __init__(self, store: PostgresStore, node: str) -> None:
        self._store = store
        self.node = node

    @property
    def _pool(self) -> Any:
        return self._store.connections

    async def take(
        self, job_type: str, max_workers: int, now: float, expires_at: float
    ) -> int | None:
        """Free expired slots, then insert the lowest free number; retry if another node won it."""
        for _ in range(max_workers):
            async with self._pool.acquire() as connection, connection.transaction():
                await connection.execute(Q["free_expired_slots"], job_type, now)
                slot = await connection.fetchval(
                    Q["take_slot"], job_type, self.node, now, expires_at, max_workers
                )
                if slot is not None:
                    return int(slot)
                # Lost the race for that number: try again only if some number is free.
                free = await connection.fetchval(Q["slots_free"], job_type, max_workers)
            if not free:
                return None
        return None

    async def renew(self, job_type: str, slots: list[int], expires_at: float) -> set[int]:
        """Push the expiry of this node's slots forward."""
        rows = await self._pool.fetch(Q["renew_slots"], job_type, self.node, expires_at, slots)
        return {int(row["slot"]) for row in rows}

    async def release(self, job_type: str, slots: list[int]) -> None:
        """Delete this node's slots."""
        await self._pool.execute(Q["release_slots"], job_type, self.node, slots)

    async def holders(self) -> list[SlotHolder]:
        """Every held slot."""
        rows = await self._pool.fetch(Q["list_slots"])
        return [SlotHolder(**dict(row)) for row in rows]
