"""Retry back-off: how long a job waits before its next attempt."""

from __future__ import annotations


def backoff_s(attempt: int, base_s: float, max_s: float) -> float:
    """Exponential back-off after `attempt` failed attempts: base, 2*base, 4*base, ... capped."""
    if attempt < 1:
        return 0.0
    # Cap the exponent so huge attempt numbers cannot overflow a float.
    return min(max_s, base_s * 2.0 ** min(attempt - 1, 60))
