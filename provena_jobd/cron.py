"""Cron arithmetic for `[[schedules]]`, as pure functions of an injected time (UTC).

cronsim (the cron evaluator Healthchecks is built on) parses and steps the expressions;
what is decided here is which due time to fire, given the last one recorded.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from typing import Literal

from cronsim import CronSim, CronSimError

Missed = Literal["skip", "run_once"]

# A due time noticed more than this late was missed (jobd was down): `missed` decides.
LATE_S = 60.0


def _at(timestamp: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC)


def check(expr: str) -> str | None:
    """Why `expr` is not a cron expression, or None if it is one."""
    try:
        CronSim(expr, _at(0))
    except CronSimError as exc:
        return str(exc)
    return None


def next_fire(expr: str, after: float) -> float:
    """The first due time strictly after `after`."""
    return next(CronSim(expr, _at(after))).timestamp()


def latest_due(expr: str, now: float) -> float:
    """The last due time at or before `now` (due times fall on whole seconds)."""
    return next(CronSim(expr, _at(math.floor(now) + 1), reverse=True)).timestamp()


@dataclass(frozen=True)
class Due:
    """A due time to record: `fire` it (launch its job), or record it as skipped."""

    due_at: float
    fire: bool


def decide(expr: str, last: float | None, now: float, missed: Missed) -> Due | None:
    """What to record at `now`, given the last due time recorded (None: never).

    Only the latest due time is recorded, so a schedule never fires twice for one round of
    missed times. On time (at most LATE_S late) it fires. Later than that, jobd was not
    running: `run_once` fires it (once for all that were missed), `skip` records it as
    skipped. A schedule never recorded starts from `now - LATE_S`: a new schedule does not
    fire for times before jobd knew it.
    """
    start = last if last is not None else now - LATE_S
    if next_fire(expr, start) > now:
        return None
    due_at = latest_due(expr, now)
    on_time = now - due_at <= LATE_S
    return Due(due_at=due_at, fire=on_time or missed == "run_once")
