"""Start limits as fixed time windows: pure arithmetic on counts a backend keeps.

A type limited to N starts per second may claim N jobs in each whole second
(`floor(now)`), and likewise per minute (`floor(now / 60) * 60`). Fixed windows keep one
row per type and window in the database, which every node updates in its claim's
transaction; the price is that a burst may straddle a window edge (up to 2N in any
one-second span), which is what fixed windows always allow.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable, Mapping

from .store import StartLimits

SECOND = 1.0
MINUTE = 60.0


def window_start(now: float, length: float) -> float:
    """The start of the fixed window of `length` seconds that holds `now`."""
    return math.floor(now / length) * length


def limited(limits: StartLimits) -> bool:
    """Whether the type has a start limit at all (without one, no window is read or kept)."""
    return limits.per_s is not None or limits.per_min is not None


def _caps(limits: StartLimits) -> dict[float, int]:
    caps = {}
    if limits.per_s is not None:
        caps[SECOND] = limits.per_s
    if limits.per_min is not None:
        caps[MINUTE] = limits.per_min
    return caps


def used(now: float, length: float, counts: Mapping[float, tuple[float, int]]) -> int:
    """How many starts the window holding `now` has counted (an older window counts 0)."""
    start, count = counts.get(length, (math.nan, 0))
    return count if start == window_start(now, length) else 0


def allowance(now: float, limits: StartLimits, counts: Mapping[float, tuple[float, int]]) -> int:
    """How many more jobs may start at `now`; `counts` maps a window length to the
    (start, count) last stored for it. Without limits, no bound (a very large number)."""
    left = [cap - used(now, length, counts) for length, cap in _caps(limits).items()]
    return max(0, min(left)) if left else 2**31


def counted(
    now: float, limits: StartLimits, counts: Mapping[float, tuple[float, int]], started: int
) -> dict[float, tuple[float, int]]:
    """The windows to store after `started` more jobs started at `now`."""
    return {
        length: (window_start(now, length), used(now, length, counts) + started)
        for length in _caps(limits)
    }


def reopens_at(now: float, limits: StartLimits, counts: Mapping[float, tuple[float, int]]) -> float:
    """When the windows that are full at `now` have all ended (`now` if none is full)."""
    ends = [
        window_start(now, length) + length
        for length, cap in _caps(limits).items()
        if used(now, length, counts) >= cap
    ]
    return max(ends, default=now)


def given_back(held: Iterable[tuple[str, float]]) -> dict[tuple[str, float, float], int]:
    """The starts that held jobs going back unstarted give back, from (job type, claimed_at)
    of each: how many per (type, window length, window start). A claim counts its jobs at
    the `claimed_at` it gives them, so these are the windows that counted them; a backend
    takes them off only where a window is still the current one."""
    starts: collections.Counter[tuple[str, float, float]] = collections.Counter()
    for job_type, claimed_at in held:
        for length in (SECOND, MINUTE):
            starts[(job_type, length, window_start(claimed_at, length))] += 1
    return dict(starts)
