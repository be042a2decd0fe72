"""When a delayed launch may run, and what a launch's fingerprint covers (issue 14)."""

from __future__ import annotations

from typing import Any

import pytest

from provena_jobd.errors import RequestInvalid
from provena_jobd.launch_options import delayed_info, fingerprint, run_after
from provena_jobd.models import LaunchJobRequest

NOW = 1_800_000_000.0


def request(**extra: Any) -> LaunchJobRequest:
    return LaunchJobRequest(
        job_type="EMAIL", job_sub_type="EMAIL_WAKE_UP", job_payload={"a": 1}, **extra
    )


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, NOW),
        ({"delay_s": 0}, NOW),
        ({"delay_s": 90.5}, NOW + 90.5),
        ({"not_before": NOW + 3600}, NOW + 3600),
        ({"not_before": NOW - 10}, NOW),  # a time already past: now
    ],
)
def test_run_after(extra: dict[str, Any], expected: float) -> None:
    assert run_after(request(**extra), NOW, max_delay_s=3600) == expected


@pytest.mark.parametrize(
    "extra",
    [
        {"delay_s": -1},
        {"delay_s": float("nan")},
        {"delay_s": 3601},
        {"not_before": NOW + 3601},
        {"delay_s": 1, "not_before": NOW},
    ],
)
def test_impossible_delays_are_refused(extra: dict[str, Any]) -> None:
    with pytest.raises(RequestInvalid):
        run_after(request(**extra), NOW, max_delay_s=3600)


def test_only_a_job_that_must_wait_gets_a_delayed_info() -> None:
    assert delayed_info(NOW, NOW) is None
    assert delayed_info(NOW, NOW + 60) == (
        "Scheduled: waits until 2027-01-15 08:01:00 UTC before it runs."
    )


def test_the_fingerprint_covers_the_request_but_not_its_key() -> None:
    base = fingerprint(request(), "alice")
    assert fingerprint(request(idempotency_key="k"), "alice") == base
    assert fingerprint(request(), "bob") != base
    other = LaunchJobRequest(job_type="EMAIL", job_sub_type="EMAIL_WAKE_UP", job_payload={"a": 2})
    assert fingerprint(other, "alice") != base
    assert fingerprint(request(delay_s=5), "alice") != base
