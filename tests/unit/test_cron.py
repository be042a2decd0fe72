"""Which cron due time fires, as a pure function of the time (issue 14)."""

from __future__ import annotations

import pytest

from provena_jobd.cron import Due, Missed, check, decide, latest_due, next_fire

T = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC, a whole hour
EVERY_5 = "*/5 * * * *"


@pytest.mark.parametrize(
    ("after", "expected"),
    [(T, T + 300), (T - 0.5, T), (T + 299, T + 300), (T + 300, T + 600)],
)
def test_next_fire_is_strictly_after(after: float, expected: float) -> None:
    assert next_fire(EVERY_5, after) == expected


@pytest.mark.parametrize(
    ("now", "expected"), [(T, T), (T + 0.9, T), (T + 299.9, T), (T - 0.1, T - 300)]
)
def test_latest_due_is_at_or_before_now(now: float, expected: float) -> None:
    assert latest_due(EVERY_5, now) == expected


@pytest.mark.parametrize(
    ("last", "now", "missed", "expected"),
    [
        (None, T - 1, "skip", None),  # nothing due yet
        (None, T, "skip", Due(T, True)),  # a new schedule fires at its first due time
        (None, T + 30, "skip", Due(T, True)),  # noticed a little late: still on time
        (T, T + 30, "skip", None),  # already recorded
        (T, T + 299, "skip", None),
        (T, T + 300, "skip", Due(T + 300, True)),
        (T, T + 3600, "skip", Due(T + 3600, True)),  # down for an hour, due right now
        (T, T + 3700, "skip", Due(T + 3600, False)),  # missed ones are recorded as skipped
        (T, T + 3700, "run_once", Due(T + 3600, True)),  # or run once for all of them
        (None, T + 59, "run_once", Due(T, True)),  # new: starts a minute back, no further
        (None, T + 120, "run_once", None),
    ],
)
def test_decide(last: float | None, now: float, missed: Missed, expected: Due | None) -> None:
    assert decide(EVERY_5, last, now, missed) == expected


def test_bad_expressions_say_why() -> None:
    assert check(EVERY_5) is None
    assert check("0 9 * * MON-FRI") is None
    problem = check("every day")
    assert problem is not None and "fields" in problem
    assert check("61 * * * *") is not None
