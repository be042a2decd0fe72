"""Retention on PostgreSQL: the same sweep as `sqlite_prune`, checked and deleted in one
transaction, with the unit's rows locked so no node can add to it in between."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .dialect import queries
from .postgres_steps import rows_touched
from .sqlite_prune import FINISHED, MAX_UNIT_JOBS
from .store import Prune, Pruned

Q = queries("postgres")


async def prune_step(connection: Any, prunes: Sequence[Prune]) -> list[Pruned]:
    """Group-commit step: each prune pass checks and deletes in one transaction."""
    results = []
    for prune in prunes:
        async with connection.transaction():
            results.append(await _prune(connection, prune))
    return results


async def _prune(connection: Any, prune: Prune) -> Pruned:
    after_finished, after_seq = prune.after or (float("-inf"), -1)
    rows = await connection.fetch(
        Q["prune_candidates"], prune.before, after_finished, after_seq, prune.limit
    )
    doomed: set[str] = set()
    batch_ids: set[str] = set()
    last: tuple[float, int] | None = None
    for row in rows:
        last = (row["finished_timestamp"], row["seq"])
        session_id = row["session_id"]
        if session_id in doomed:
            continue
        if row["alone"]:
            doomed.add(session_id)
        else:
            unit = await _unit(connection, session_id, prune.before)
            if unit is None:
                continue
            doomed |= unit[0]
            batch_ids |= unit[1]
        if len(doomed) >= prune.limit:
            break
    else:
        if len(rows) < prune.limit:
            last = None
    ids = list(doomed)
    records = await connection.execute(Q["delete_records"], ids)
    await connection.execute(Q["delete_jobs"], ids)
    batches = await connection.execute(Q["delete_batches"], list(batch_ids))
    return Pruned(
        jobs=len(doomed), records=rows_touched(records), batches=rows_touched(batches), after=last
    )


async def _unit(connection: Any, seed: str, before: float) -> tuple[set[str], set[str]] | None:
    """Every job tied to `seed` by batch or workflow, if all finished before `before`."""
    members: set[str] = set()
    batch_ids: set[str] = set()
    queue = [seed]
    while queue:
        session_id = queue.pop()
        if session_id in members:
            continue
        row = await connection.fetchrow(Q["prune_member"], session_id)
        if row is None:
            continue
        finished = row["finished_timestamp"]
        if row["status"] not in FINISHED or finished is None or finished >= before:
            return None
        members.add(session_id)
        if len(members) > MAX_UNIT_JOBS:
            return None
        if row["parent_session_id"] is not None:
            queue.append(row["parent_session_id"])
        children = await connection.fetch(Q["prune_children"], session_id)
        queue.extend(r["session_id"] for r in children)
        batch_id = row["batch_id"]
        if batch_id is not None and batch_id not in batch_ids:
            batch_ids.add(batch_id)
            mates = await connection.fetch(Q["prune_batch_members"], batch_id)
            queue.extend(r["session_id"] for r in mates)
    return members, batch_ids
