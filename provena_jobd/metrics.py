"""Prometheus metrics: counters kept as things happen, gauges read from the pools at scrape.

One `Metrics` per `JobdServer`, on its own `CollectorRegistry` (never the library's global
one), so several servers in one test process each count only their own jobs. Counting costs
a dictionary lookup and an addition; the gauges (jobs waiting and running, workers by state)
and the group-commit figures are computed only when `/metrics` is scraped.

Every count is made on the event loop's thread, so the counters and histograms here are plain
dictionaries of numbers (`LoopCounter`, `LoopHistogram`), exported by a collector at scrape
time. prometheus_client's own take a lock and make several calls per count, which cost more
than the rest of a short job's bookkeeping (about 6 counts per job, and one per request).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .pool_models import PoolSnapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds from launch to start, and of a handler's run: from a quick job to a slow report.
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)


@dataclass
class ScrapeState:
    """What the collector reports at one scrape, gathered (asynchronously) just before it."""

    pools: list[PoolSnapshot] = field(default_factory=list)
    idle_stops: dict[str, int] = field(default_factory=dict)
    transactions: int | None = None  # group commits so far (SQLite)
    writes: int | None = None  # writes they carried


class _ScrapeCollector(Collector):
    """The counts kept on the loop, and gauges and counters read from the pools and the
    writer at scrape time."""

    def __init__(self, counted: Sequence[LoopCounter | LoopHistogram]) -> None:
        self.state = ScrapeState()
        self.counted = counted

    def collect(self) -> Iterator[Metric]:
        """The metric families of the counts and of the current `state`."""
        for metric in self.counted:
            yield metric.family()
        state = self.state
        waiting = GaugeMetricFamily(
            "jobd_jobs_waiting",
            "Jobs not started: PENDING (backing off too) or claimed ahead",
            labels=["job_type"],
        )
        running = GaugeMetricFamily(
            "jobd_jobs_running", "Jobs a worker holds now", labels=["job_type"]
        )
        workers = GaugeMetricFamily(
            "jobd_workers", "Workers by state", labels=["job_type", "state"]
        )
        cold_starts = CounterMetricFamily(
            "jobd_worker_cold_starts", "Workers started (scale-up events)", labels=["job_type"]
        )
        idle_stops = CounterMetricFamily(
            "jobd_worker_idle_stops",
            "Workers stopped after their idle timeout",
            labels=["job_type"],
        )
        for pool in state.pools:
            waiting.add_metric([pool.job_type], pool.waiting)
            running.add_metric([pool.job_type], pool.running_jobs)
            cold_starts.add_metric([pool.job_type], pool.cold_starts)
            for name, count in sorted(pool.workers.items()):
                workers.add_metric([pool.job_type, name], count)
            if pool.job_type in state.idle_stops:
                idle_stops.add_metric([pool.job_type], state.idle_stops[pool.job_type])
        yield from (waiting, running, workers, cold_starts, idle_stops)
        if state.transactions is not None and state.writes is not None:
            yield CounterMetricFamily(
                "jobd_store_transactions",
                "Group-commit transactions of the job store",
                value=state.transactions,
            )
            yield CounterMetricFamily(
                "jobd_store_writes",
                "Writes committed; divided by transactions: writes per transaction",
                value=state.writes,
            )


class LoopCounter:
    """A counter by label values, counted on the event loop's thread: no lock, no children."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = tuple(labels)
        # Label values -> count. The values are bounded (job types, sub types, statuses,
        # route templates), as prometheus_client's own children are.
        self.counts: dict[tuple[str, ...], float] = {}

    def inc(self, *values: str, amount: float = 1.0) -> None:
        """Add `amount` to the count of these label values (one per label, in order)."""
        if len(values) != len(self.labels) or amount < 0:
            raise ValueError(f"{self.name}: {len(self.labels)} label values and amount >= 0")
        self.counts[values] = self.counts.get(values, 0.0) + amount

    def family(self) -> CounterMetricFamily:
        """The counter as Prometheus shows it (`<name>_total` per label values)."""
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for values, count in self.counts.items():
            family.add_metric(list(values), count)
        return family


class LoopHistogram:
    """A histogram by label values, observed on the event loop's thread: no lock."""

    def __init__(
        self, name: str, documentation: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = tuple(labels)
        self._bounds = tuple(sorted(buckets))
        # The `le` labels as prometheus_client writes them ("0.01", "1.0", "+Inf").
        self._le = [floatToGoString(bound) for bound in self._bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        # Label values -> the count in each bucket (the last: above every bound), then the sum.
        self._series: dict[tuple[str, ...], list[float]] = {}

    def observe(self, value: float, *values: str) -> None:
        """Count one observation of `value` for these label values."""
        series = self._series.get(values)
        if series is None:
            if len(values) != len(self.labels):
                raise ValueError(f"{self.name}: {len(self.labels)} label values")
            series = self._series[values] = [0.0] * (len(self._bounds) + 2)
        # A value equal to a bound belongs to that bound's bucket (le: less or equal).
        series[bisect.bisect_left(self._bounds, value)] += 1
        series[-1] += value

    def family(self) -> HistogramMetricFamily:
        """The histogram as Prometheus shows it: cumulative buckets, count and sum."""
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        for values, series in self._series.items():
            cumulative = itertools.accumulate(series[:-1])
            family.add_metric(
                list(values), list(zip(self._le, cumulative, strict=True)), series[-1]
            )
        return family


class Metrics:
    """Every metric of one jobd server."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.launched = LoopCounter("jobd_jobs_launched", "Jobs launched", ["job_type", "sub_type"])
        self.finished = LoopCounter(
            "jobd_jobs_finished",
            "Jobs that ended, by final status",
            ["job_type", "sub_type", "status"],
        )
        self.wait_seconds = LoopHistogram(
            "jobd_job_wait_seconds",
            "From launch to the start of a job's (first or later) attempt",
            ["job_type"],
            DURATION_BUCKETS,
        )
        self.run_seconds = LoopHistogram(
            "jobd_job_run_seconds",
            "From an attempt's start to the job's end",
            ["job_type"],
            DURATION_BUCKETS,
        )
        self.retries = LoopCounter(
            "jobd_job_retries",
            "Attempts that failed and were retried",
            ["job_type"],
        )
        self.lease_losses = LoopCounter(
            "jobd_lease_losses",
            "Attempts whose result was refused: the job had been rescued or cancelled",
            ["job_type"],
        )
        self.rescued = LoopCounter(
            "jobd_jobs_rescued",
            "Jobs of lost workers requeued (PENDING) or ended (FAILED: out of attempts, "
            "or cancelled while they ran)",
            ["job_type", "status"],
        )
        self.pruned = LoopCounter(
            "jobd_pruned",
            "Finished jobs and records deleted by retention",
            ["kind"],
        )
        self.http_requests = LoopCounter(
            "jobd_http_requests",
            "HTTP requests by route template and status",
            ["method", "route", "status"],
        )
        self._scrape = _ScrapeCollector(
            [
                self.launched,
                self.finished,
                self.wait_seconds,
                self.run_seconds,
                self.retries,
                self.lease_losses,
                self.rescued,
                self.pruned,
                self.http_requests,
            ]
        )
        self.registry.register(self._scrape)

    def exposition(self, state: ScrapeState) -> bytes:
        """The Prometheus text format of every metric, with `state` for the gauges."""
        # No await between setting the state and rendering it: scrapes cannot interleave.
        self._scrape.state = state
        return generate_latest(self.registry)

    def count_pruned(self, jobs: int, records: int) -> None:
        """Retention deleted `jobs` jobs and `records` records."""
        if jobs:
            self.pruned.inc("jobs", amount=jobs)
        if records:
            self.pruned.inc("records", amount=records)


def sample(exposition: bytes | str, name: str, labels: dict[str, str] | None = None) -> float:
    """One sample's value from an exposition (0 when absent): for tests and scripts."""
    from prometheus_client.parser import text_string_to_metric_families

    text = exposition.decode() if isinstance(exposition, bytes) else exposition
    wanted = labels or {}
    total = 0.0
    for family in text_string_to_metric_families(text):
        for item in family.samples:
            if item.name == name and all(item.labels.get(k) == v for k, v in wanted.items()):
                total += item.value
    return total
