"""Two engines in one process on one PostgreSQL database (a service's tests starting two
nodes, say through `provena_jobd.testing`) are two nodes: each has a name of its own, so a
worker slot one of them lost is not taken back for it under the other's name."""

from __future__ import annotations

import logging
import os
import socket

import asyncpg
import pytest

from provena_jobd.clock import FakeClock
from provena_jobd.models import JobStatus, JobType
from provena_jobd.server import JobdServer
from provena_jobd.workers.pool import Pool
from tests.helpers import eventually, job_in
from tests.postgres import empty

from .pool_helpers import Starter, advance, launch

EMAIL = JobType.EMAIL
ONE_WORKER = {"max_workers": 1, "concurrency": 1}


@pytest.fixture
def storage(postgres_database: str) -> dict[str, str]:
    """The `[storage]` section of nodes sharing the test run's (emptied) PostgreSQL database."""
    empty(postgres_database)
    return {"db": postgres_database}


async def slot_holders(server: JobdServer) -> list[tuple[str, int, str]]:
    """Every worker slot of the cluster: (job type, number, node)."""
    assert server.slots is not None
    return [(h.job_type, h.slot, h.node) for h in await server.slots.holders()]


async def test_two_engines_in_one_process_have_distinct_readable_node_names(
    start: Starter, storage: dict[str, str]
) -> None:
    first, second = await start(storage=storage), await start(storage=storage)
    assert first.node != second.node
    here = f"{socket.gethostname()}-{os.getpid()}"
    for server in (first, second):
        assert server.node == here or server.node.startswith(f"{here}-")


async def test_a_node_whose_slot_another_node_took_over_stops_that_worker_and_leaves_the_slot(
    start: Starter,
    clock: FakeClock,
    storage: dict[str, str],
    postgres_database: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stalled = await start(pool=ONE_WORKER, storage=storage)
    # A job run: its worker, idle now, holds the cluster's one EMAIL slot.
    await job_in(stalled.store, await launch(stalled), JobStatus.SUCCEEDED)
    assert await slot_holders(stalled) == [(EMAIL, 1, stalled.node)]
    other = await start(pool=ONE_WORKER, storage=storage)

    # The node stalls past its lease (its slot runs out unrenewed), and the other node takes
    # the slot over, as its pool does when it starts a worker.
    connection = await asyncpg.connect(postgres_database)
    try:
        await connection.execute("UPDATE worker_slots SET expires_at = $1", clock.now() - 1)
    finally:
        await connection.close()
    assert other.slots is not None
    lease_s = other.settings.queue.lease_s
    assert await other.slots.take(EMAIL, 1, clock.now(), clock.now() + lease_s) == 1

    # At its next heartbeat the stalled node finds the slot gone and stops the worker in it.
    pool = stalled.pools[EMAIL]
    assert isinstance(pool, Pool)
    with caplog.at_level(logging.WARNING, logger="provena_jobd.workers.pool"):
        await advance(stalled, clock, lease_s / 3)

        async def stopped() -> bool:
            return not pool.workers

        await eventually(stopped, what="the stalled node to stop the worker that lost its slot")
    assert [r for r in caplog.records if getattr(r, "action", "") == "worker_slot_lost"]
    # Stopping the node gives back none of the other node's slot: max_workers still holds.
    await stalled.stop(grace_s=0)
    assert await slot_holders(other) == [(EMAIL, 1, other.node)]
