"""The pool's pure decisions, as tables."""

from __future__ import annotations

import pytest

from provena_jobd.queue.backoff import backoff_s
from provena_jobd.workers.autoscale import PoolView, should_retire, workers_to_start


@pytest.mark.parametrize(
    ("waiting", "provisioning", "ready", "free", "max_workers", "concurrency", "expected"),
    [
        (0, 0, 0, 0, 3, 1, 0),  # nothing waits: no worker
        (1, 0, 0, 0, 3, 1, 1),  # a job waits and nothing runs: one cold start
        (5, 0, 0, 0, 3, 1, 3),  # a burst: up to the cap at once
        (5, 1, 0, 0, 3, 1, 2),  # a provisioning worker counts as coming capacity
        (2, 2, 0, 0, 3, 1, 0),  # ... so two provisioning workers cover two jobs
        (5, 0, 3, 0, 3, 1, 0),  # at the cap: wait
        (1, 0, 1, 1, 3, 1, 0),  # a free slot on a ready worker takes it
        (10, 0, 0, 0, 3, 4, 3),  # concurrency 4: ceil(10 / 4) = 3 workers
        (3, 0, 0, 0, 3, 4, 1),  # concurrency 4: one worker takes three jobs
        (9, 0, 1, 0, 3, 4, 2),  # one busy worker; 9 uncovered -> 2 more (cap 3)
    ],
)
def test_workers_to_start(
    waiting: int,
    provisioning: int,
    ready: int,
    free: int,
    max_workers: int,
    concurrency: int,
    expected: int,
) -> None:
    view = PoolView(waiting=waiting, provisioning=provisioning, ready=ready, free_slots=free)
    assert workers_to_start(view, max_workers, concurrency) == expected


@pytest.mark.parametrize(
    ("running", "idle_since", "now", "timeout", "expected"),
    [
        (0, 100.0, 219.9, 120.0, False),  # idle, but not yet two minutes
        (0, 100.0, 220.0, 120.0, True),  # idle for exactly the timeout
        (1, 0.0, 1_000.0, 120.0, False),  # a busy worker never retires, however long its job
        (0, 1_000.0, 1_000.0, 0.0, True),  # timeout 0: stops as soon as it is idle
    ],
)
def test_should_retire(
    running: int, idle_since: float, now: float, timeout: float, expected: bool
) -> None:
    assert should_retire(running, idle_since, now, timeout) is expected


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(0, 0.0), (1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (10, 300.0), (10_000, 300.0)],
)
def test_backoff_doubles_and_caps(attempt: int, expected: float) -> None:
    assert backoff_s(attempt, base_s=1.0, max_s=300.0) == expected
