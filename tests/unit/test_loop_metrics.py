"""jobd's lock-free counters and histograms read, to a scraper, as prometheus_client's own."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from provena_jobd.metrics import DURATION_BUCKETS, LoopCounter, LoopHistogram


class _Families(Collector):
    def __init__(self, *metrics: LoopCounter | LoopHistogram) -> None:
        self.metrics = metrics

    def collect(self) -> list[Metric]:
        return [metric.family() for metric in self.metrics]


def _without_created(exposition: bytes) -> list[str]:
    """The exposition's lines, less prometheus_client's `_created` timestamps (jobd has none)."""
    return [line for line in exposition.decode().splitlines() if "_created" not in line]


def test_counts_and_observations_expose_exactly_as_prometheus_client_would() -> None:
    theirs = CollectorRegistry(auto_describe=False)
    their_counter = Counter("jobd_c", "Counted", ["job_type", "status"], registry=theirs)
    their_histogram = Histogram(
        "jobd_h", "Observed", ["job_type"], buckets=DURATION_BUCKETS, registry=theirs
    )
    ours = CollectorRegistry(auto_describe=False)
    our_counter = LoopCounter("jobd_c", "Counted", ["job_type", "status"])
    our_histogram = LoopHistogram("jobd_h", "Observed", ["job_type"], DURATION_BUCKETS)
    ours.register(_Families(our_counter, our_histogram))

    for job_type, status, amount in [("EMAIL", "SUCCEEDED", 1), ("EMAIL", "FAILED", 3)] * 2:
        their_counter.labels(job_type, status).inc(amount)
        our_counter.inc(job_type, status, amount=amount)
    # Values on a bucket's bound belong to it (le), beyond the last to +Inf, and 0 to the first.
    for job_type, seconds in [("EMAIL", 0.0), ("EMAIL", 0.05), ("REPORT", 2.5), ("EMAIL", 9e9)]:
        their_histogram.labels(job_type).observe(seconds)
        our_histogram.observe(seconds, job_type)

    assert _without_created(generate_latest(ours)) == _without_created(generate_latest(theirs))


def test_a_metric_never_counted_still_shows_its_help_and_type() -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(LoopCounter("jobd_none", "Never counted", ["job_type"])))
    assert _without_created(generate_latest(registry)) == [
        "# HELP jobd_none_total Never counted",
        "# TYPE jobd_none_total counter",
    ]


def test_a_count_with_the_wrong_labels_or_a_negative_amount_is_refused() -> None:
    counter = LoopCounter("jobd_c", "Counted", ["job_type", "status"])
    histogram = LoopHistogram("jobd_h", "Observed", ["job_type"], DURATION_BUCKETS)
    with pytest.raises(ValueError, match="jobd_c"):
        counter.inc("EMAIL")
    with pytest.raises(ValueError, match="jobd_c"):
        counter.inc("EMAIL", "X", amount=-1)
    with pytest.raises(ValueError, match="jobd_h"):
        histogram.observe(1.0, "EMAIL", "extra")
    assert counter.family().samples == [] and histogram.family().samples == []
