"""Folding a job's start into its finish when both wait for the same SQLite batch.

A job that the pool starts at once (`SqliteStore.start_at_once`) and whose handler returns
before the writer takes its next batch would cost two guarded UPDATEs of one row in one
transaction: DEQUEUED -> IN_PROGRESS, then IN_PROGRESS -> SUCCEEDED. Folded, its finish
writes both in one UPDATE (the started time included), guarded by DEQUEUED and the attempt.
Nobody could have seen the IN_PROGRESS in between: readers see a batch only once it is
committed. The attempt history still gets the start (migration 0008).

A start is folded only while nothing can come between it and its finish:
- both are in the writer's queue, not yet taken: they become the same batch;
- no barrier write (a cancel, a rescue, ...) was submitted since the start: a barrier
  between them would otherwise see the job DEQUEUED instead of IN_PROGRESS;
- no progress report of the job was submitted since: it needs the job IN_PROGRESS.

A folded start exists only if its finish commits. So when a batch fails and the writer
applies its writes one by one, each in its own transaction, the starts are unfolded first
(`unfold`): a finish that fails alone then leaves its job started, as it would have been.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .store import Finish, Lease
from .writer import GroupCommitWriter


@dataclass(slots=True)
class QueuedStart:
    """A start waiting for the writer; `folded` once its finish writes it instead."""

    info: str
    now: float
    lease: Lease
    folded: bool = False


@dataclass(slots=True, frozen=True)
class QueuedFinish:
    """A finish for the writer, with its job's queued start if that can be folded into it
    (it is, once `start.folded` is set)."""

    finish: Finish
    start: QueuedStart | None = None

    @property
    def folded_start(self) -> QueuedStart | None:
        """The start this finish writes too, if any."""
        start = self.start
        return start if start is not None and start.folded else None


def unfold(arguments: Sequence[Any]) -> None:
    """Before a failed batch's writes are applied one by one: every start writes itself."""
    for argument in arguments:
        if isinstance(argument, QueuedStart):
            argument.folded = False


class StartFolder:
    """Remembers the at-once starts still in the writer's queue, to fold finishes into."""

    def __init__(self, writer: GroupCommitWriter) -> None:
        self._writer = writer
        # The queued starts by session id, with the writer's barrier count when each was
        # queued; all of them belong to the batch the writer has not taken yet, `_batch`.
        self._queued: dict[str, tuple[QueuedStart, int]] = {}
        self._batch = writer.taken

    def _current(self) -> dict[str, tuple[QueuedStart, int]]:
        """The starts of the batch still being queued (forgets those the writer took)."""
        if self._batch != self._writer.taken:
            self._queued.clear()
            self._batch = self._writer.taken
        return self._queued

    def queued(self, start: QueuedStart) -> None:
        """A start was just queued (detached, at once)."""
        self._current()[start.lease.session_id] = (start, self._writer.barriers)

    def fold(self, finish: Finish) -> QueuedFinish:
        """The finish to queue, with its job's start if that can be folded into it; the
        caller sets `start.folded` once the finish is queued."""
        entry = self._current().pop(finish.session_id, None)
        if entry is None:
            return QueuedFinish(finish)
        start, barriers = entry
        if start.lease.attempt != finish.attempt or barriers != self._writer.barriers:
            return QueuedFinish(finish)
        return QueuedFinish(finish, start)

    def keep(self, session_id: str) -> None:
        """Never fold this job's queued start: another write needs the job IN_PROGRESS."""
        self._current().pop(session_id, None)
