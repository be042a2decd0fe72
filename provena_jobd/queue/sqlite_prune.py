"""Retention on SQLite: delete old finished jobs a whole batch or workflow at a time.

Runs as one step on the group-commit writer, so a unit is checked and deleted in the same
transaction: nothing can join a batch or finish between the check and the delete.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ..models import TERMINAL_STATUSES
from .dialect import queries
from .store import Prune, Pruned

Q = queries("sqlite")
# A unit (batch plus workflows) larger than this is left alone rather than held in memory.
MAX_UNIT_JOBS = 100_000
FINISHED = {status.value for status in TERMINAL_STATUSES}


def prune_step(connection: sqlite3.Connection, prunes: Sequence[Prune]) -> list[Pruned]:
    """Writer step: apply each prune pass in the open transaction."""
    return [_prune(connection, prune) for prune in prunes]


def _prune(connection: sqlite3.Connection, prune: Prune) -> Pruned:
    after_finished, after_seq = prune.after or (float("-inf"), -1)
    rows = connection.execute(
        Q["prune_candidates"],
        {
            "before": prune.before,
            "after_finished": after_finished,
            "after_seq": after_seq,
            "limit": prune.limit,
        },
    ).fetchall()
    doomed: set[str] = set()
    batch_ids: set[str] = set()
    last: tuple[float, int] | None = None
    for finished, seq, session_id, alone in rows:
        last = (finished, seq)
        if session_id in doomed:
            continue
        if alone:  # the common case: a finished job on its own (the query checked its age)
            doomed.add(session_id)
        else:
            unit = _unit(connection, session_id, prune.before)
            if unit is None:  # something in its batch or workflow is unfinished or too recent
                continue
            doomed |= unit[0]
            batch_ids |= unit[1]
        if len(doomed) >= prune.limit:
            break
    else:
        if len(rows) < prune.limit:
            last = None  # the sweep reached the end
    ids = [(session_id,) for session_id in doomed]
    records = connection.executemany(Q["delete_records"], ids).rowcount
    connection.executemany(Q["delete_job"], ids)
    batches = connection.executemany(Q["delete_batch"], [(b,) for b in batch_ids]).rowcount
    return Pruned(jobs=len(doomed), records=max(records, 0), batches=max(batches, 0), after=last)


def _unit(
    connection: sqlite3.Connection, seed: str, before: float
) -> tuple[set[str], set[str]] | None:
    """Every job tied to `seed` by batch or workflow, if all finished before `before`."""
    members: set[str] = set()
    batch_ids: set[str] = set()
    queue = [seed]
    while queue:
        session_id = queue.pop()
        if session_id in members:
            continue
        row = connection.execute(Q["prune_member"], (session_id,)).fetchone()
        if row is None:  # a parent pruned earlier, or never stored
            continue
        _, batch_id, parent, status, finished = row
        if status not in FINISHED or finished is None or finished >= before:
            return None
        members.add(session_id)
        if len(members) > MAX_UNIT_JOBS:
            return None
        if parent is not None:
            queue.append(parent)
        queue.extend(r[0] for r in connection.execute(Q["prune_children"], (session_id,)))
        if batch_id is not None and batch_id not in batch_ids:
            batch_ids.add(batch_id)
            queue.extend(r[0] for r in connection.execute(Q["prune_batch_members"], (batch_id,)))
    return members, batch_ids
