"""Crash-loop back-off for the worker processes a process pool starts.

A process that cannot be started (a bad command or cwd), that exits before its first claim
(an import error, a missing setting, a token jobd refuses), or that fails within
`HEALTHY_AFTER_S` of its start, is a *failed start*. Without a pause the pool would start the
next one on its next tick, forever: a tight loop that floods the log and burns CPU. After each
failed start in a row the pool waits longer before it starts another - `FIRST_DELAY_S`,
doubling, at most `MAX_DELAY_S` - and until one proves healthy it starts one at a time. A
process that has claimed and run for `HEALTHY_AFTER_S`, or that claimed and then exited with
status 0 (an idle stop), is healthy: the count goes back to zero.

Pure bookkeeping: the pool passes the time in (its injected Clock's), nothing here reads it.
"""

from __future__ import annotations

from ..pool_models import StartBackoffInfo
from ..queue.backoff import backoff_s

FIRST_DELAY_S = 1.0
MAX_DELAY_S = 60.0
# How long a process that claimed must run before it clears the back-off: one that claims and
# then crashes at once is still failing to start.
HEALTHY_AFTER_S = 10.0


def start_delay(failures: int) -> float:
    """The pause after `failures` failed starts in a row (1 s, 2 s, 4 s ... 60 s): the same
    doubling as a job's retry back-off."""
    return backoff_s(failures, FIRST_DELAY_S, MAX_DELAY_S)


def is_failed_start(claimed: bool, exit_code: int, lived_s: float) -> bool:
    """Whether a process that exited on its own counts as a failed start.

    It does if it never claimed, or if it claimed but exited with a failing status (or was
    killed by a signal) within `HEALTHY_AFTER_S` of its start.
    """
    return not claimed or (exit_code != 0 and lived_s < HEALTHY_AFTER_S)


def proved_healthy(claimed: bool, running_s: float) -> bool:
    """Whether a running process has shown it starts well: it claimed, `HEALTHY_AFTER_S` ago."""
    return claimed and running_s >= HEALTHY_AFTER_S


class StartBackoff:
    """One pool's failed starts in a row and when it may start the next process."""

    def __init__(self) -> None:
        self.failures = 0
        self.retry_at = float("-inf")
        self.exit_code: int | None = None
        self.error: str | None = None

    def failed(self, now: float, exit_code: int | None, error: str | None = None) -> float:
        """Count a failed start at `now`; returns the pause before the next start."""
        self.failures += 1
        self.exit_code = exit_code
        self.error = error
        delay = start_delay(self.failures)
        self.retry_at = now + delay
        return delay

    def healthy(self) -> None:
        """A process proved healthy: start as usual again."""
        self.failures = 0
        self.retry_at = float("-inf")
        self.exit_code = None
        self.error = None

    def may_start(self, now: float) -> bool:
        """Whether the pause after the last failed start is over."""
        return now >= self.retry_at

    @property
    def probing(self) -> bool:
        """Whether the last start failed and no process has proved healthy since."""
        return self.failures > 0

    def info(self) -> StartBackoffInfo | None:
        """What `GET /admin/pool` shows while the last start failed; None otherwise."""
        if not self.failures:
            return None
        return StartBackoffInfo(
            failures=self.failures,
            exit_code=self.exit_code,
            error=self.error,
            retry_at=self.retry_at,
        )
