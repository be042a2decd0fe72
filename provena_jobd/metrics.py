"""Prometheus metrics: counters kept as things happen, gauges read from the pools at scrape.

One `Metrics` per `JobdServer`, on its own `CollectorRegistry` (never the library's global
one), so several servers in one test process each count only their own jobs. Counting costs
a dictionary lookup and an addition; the gauges (jobs waiting and running, workers by state)
and the group-commit figures are computed only when `/metrics` is scraped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .pool_models import PoolSnapshot

M = TypeVar("M", Counter, Histogram)

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
    """Gauges and counters read from the pools and the writer at scrape time."""

    def __init__(self) -> None:
        self.state = ScrapeState()

    def collect(self) -> Iterator[Metric]:
        """The metric families of the current `state`."""
        state = self.state
        waiting = GaugeMetricFamily(
            "jobd_jobs_waiting", "Jobs PENDING (including backing off)", labels=["job_type"]
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


class Children(Generic[M]):
    """One metric's children by label values, looked up once each.

    `labels()` validates the values and takes the metric's lock on every call, which costs
    more than the count itself; jobs and requests count several times each, so the hot
    paths keep the child instead. The label values are bounded (job types, sub types,
    statuses, route templates), as prometheus_client's own children are.
    """

    def __init__(self, family: M) -> None:
        self._family: M = family
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        """The child for these label values."""
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._family.labels(*values)
        return child


class Metrics:
    """Every metric of one jobd server."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        registry = self.registry
        self.launched = Counter(
            "jobd_jobs_launched", "Jobs launched", ["job_type", "sub_type"], registry=registry
        )
        self.finished = Counter(
            "jobd_jobs_finished",
            "Jobs that ended, by final status",
            ["job_type", "sub_type", "status"],
            registry=registry,
        )
        self.wait_seconds = Histogram(
            "jobd_job_wait_seconds",
            "From launch to the start of a job's (first or later) attempt",
            ["job_type"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.run_seconds = Histogram(
            "jobd_job_run_seconds",
            "From an attempt's start to the job's end",
            ["job_type"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "jobd_job_retries",
            "Attempts that failed and were retried",
            ["job_type"],
            registry=registry,
        )
        self.lease_losses = Counter(
            "jobd_lease_losses",
            "Attempts whose result was refused: the job had been rescued or cancelled",
            ["job_type"],
            registry=registry,
        )
        self.rescued = Counter(
            "jobd_jobs_rescued",
            "Jobs of lost workers requeued (PENDING) or ended (FAILED: out of attempts, "
            "or cancelled while they ran)",
            ["job_type", "status"],
            registry=registry,
        )
        self.pruned = Counter(
            "jobd_pruned",
            "Finished jobs and records deleted by retention",
            ["kind"],
            registry=registry,
        )
        self.http_requests = Counter(
            "jobd_http_requests",
            "HTTP requests by route template and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self._scrape = _ScrapeCollector()
        registry.register(self._scrape)

    def exposition(self, state: ScrapeState) -> bytes:
        """The Prometheus text format of every metric, with `state` for the gauges."""
        # No await between setting the state and rendering it: scrapes cannot interleave.
        self._scrape.state = state
        return generate_latest(self.registry)

    def count_pruned(self, jobs: int, records: int) -> None:
        """Retention deleted `jobs` jobs and `records` records."""
        if jobs:
            self.pruned.labels("jobs").inc(jobs)
        if records:
            self.pruned.labels("records").inc(records)


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
