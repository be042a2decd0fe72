"""Start limits as fixed windows: a table of times and counts (issue 14)."""

from __future__ import annotations

import pytest

from provena_jobd.queue.start_windows import allowance, counted, reopens_at
from provena_jobd.queue.store import StartLimits

T = 1_800_000_000.0
BOTH = StartLimits(per_s=2, per_min=5)


@pytest.mark.parametrize(
    ("now", "counts", "allowed", "reopens"),
    [
        (T, {}, 2, T),  # nothing counted yet
        (T + 0.5, {1.0: (T, 2), 60.0: (T, 2)}, 0, T + 1),  # this second is full
        (T + 1.0, {1.0: (T, 2), 60.0: (T, 2)}, 2, T + 1),  # a new second
        (T + 2.0, {1.0: (T + 1, 2), 60.0: (T, 4)}, 1, T + 2),  # the minute has one left
        (T + 3.0, {1.0: (T + 3, 0), 60.0: (T, 5)}, 0, T + 60),  # the minute is full
        (T + 60.0, {1.0: (T + 3, 2), 60.0: (T, 5)}, 2, T + 60),  # a new minute
    ],
)
def test_allowance_and_reopening_follow_the_windows(
    now: float, counts: dict[float, tuple[float, int]], allowed: int, reopens: float
) -> None:
    assert allowance(now, BOTH, counts) == allowed
    assert reopens_at(now, BOTH, counts) == reopens


def test_no_limits_allow_anything_and_store_nothing() -> None:
    assert allowance(T, StartLimits(), {}) >= 2**31
    assert counted(T, StartLimits(), {}, 10) == {}


def test_starts_are_counted_into_the_current_windows() -> None:
    counts = {1.0: (T - 1, 2), 60.0: (T - 60, 3)}
    assert counted(T + 0.25, BOTH, counts, 1) == {1.0: (T, 1), 60.0: (T, 1)}
    assert counted(T + 0.25, BOTH, {1.0: (T, 1), 60.0: (T, 1)}, 1) == {1.0: (T, 2), 60.0: (T, 2)}
