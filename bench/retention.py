"""Benchmark row: launch latency with and without a retention sweep over 1,000,000 jobs.

`python -m bench.retention [--jobs N] [--seconds S]`. Fills a fresh SQLite database with N
finished jobs (a tenth of them in batches of ten) that are all past the retention period,
starts an in-process jobd on it (default durability `full`, pools running, no HTTP), and
launches `EMAIL_WAKE_UP` jobs at a steady rate for S seconds without and S seconds with the
pruner sweeping the old jobs in its passes of `batch_size`, in alternating windows. Prints
launch p50/p99 (time from the call to its durable acknowledgement) for both, and how many
jobs the sweep deleted meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import tempfile
import time
from pathlib import Path

from provena_jobd.config import from_dict
from provena_jobd.models import LaunchJobRequest
from provena_jobd.queue.sqlite import SqliteStore
from provena_jobd.server import JobdServer

DAY = 86_400.0
OLD = 1_700_000_000.0  # when the stored jobs finished: long past any retention period
ROUNDS = 5  # windows of each kind, alternating
WAKE = LaunchJobRequest(job_type="EMAIL", job_sub_type="EMAIL_WAKE_UP", job_payload={})

FILL = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :jobs)
INSERT INTO jobs (session_id, created_timestamp, username, batch_id, job_type, job_sub_type,
                  status, payload, result, attempt, max_attempts, run_after,
                  started_timestamp, finished_timestamp)
SELECT printf('old-%08d', i), CAST(:old + i * 0.01 AS INTEGER), 'user-' || (i % 1000),
       CASE WHEN i % 100 < 10 THEN 'batch-' || (i / 100) || '-' || (i % 100 / 10) END,
       'EMAIL', 'EMAIL_WAKE_UP', 'SUCCEEDED', '{}', '{}', 1, 3, :old,
       :old + i * 0.01, :old + i * 0.01
FROM n
"""


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered)) - 1))]


async def fill(db: Path, jobs: int) -> float:
    """Create the schema, then `jobs` old finished jobs; seconds it took."""
    started = time.monotonic()
    store = SqliteStore(db)
    await store.open()
    await store.close()
    with contextlib.closing(sqlite3.connect(db)) as connection:
        connection.execute("PRAGMA synchronous = OFF")
        with connection:
            connection.execute(FILL, {"jobs": jobs, "old": OLD})
            connection.execute(
                "INSERT INTO batches SELECT DISTINCT batch_id, username, created_timestamp "
                "FROM jobs WHERE batch_id IS NOT NULL GROUP BY batch_id"
            )
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return time.monotonic() - started


async def launch_for(server: JobdServer, seconds: float, rate: float) -> list[float]:
    """Launch at `rate` per second for `seconds`; each launch's latency in seconds."""
    latencies: list[float] = []
    workers = 8
    interval = workers / rate
    deadline = time.monotonic() + seconds

    async def one_worker() -> None:
        next_at = time.monotonic()
        while next_at < deadline:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            started = time.perf_counter()
            await server.service.launch(WAKE, "bench")
            latencies.append(time.perf_counter() - started)
            next_at += interval

    await asyncio.gather(*(one_worker() for _ in range(workers)))
    return latencies


async def measure(
    jobs: int, seconds: float, rate: float, batch_size: int | None = None
) -> dict[str, float]:
    """Both runs on one filled database; the figures of the row."""
    with tempfile.TemporaryDirectory(prefix="jobd-bench-retention-") as folder:
        db = Path(folder) / "jobd.db"
        fill_s = await fill(db, jobs)
        # Retention on, but the server's own sweep not due during the run: this script runs it.
        retention: dict[str, float] = {"keep_finished_s": 30 * DAY, "interval_s": 1e9}
        if batch_size is not None:
            retention["batch_size"] = batch_size
        settings = from_dict({"storage": {"db": str(db)}, "retention": retention})
        server = JobdServer(settings)
        await server.start()
        try:
            await launch_for(server, 1.0, rate)  # warm up
            # Alternate short windows without and with a sweep, so that the machine's own
            # drift (other processes, disk) falls on both sides alike.
            quiet: list[float] = []
            busy: list[float] = []
            for _ in range(ROUNDS):
                quiet += await launch_for(server, seconds / ROUNDS, rate)
                sweep = asyncio.create_task(server.pruner.run_once(time.time()))
                busy += await launch_for(server, seconds / ROUNDS, rate)
                sweep.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweep
            with contextlib.closing(sqlite3.connect(db)) as connection:
                left = connection.execute(
                    "SELECT count(*) FROM jobs WHERE session_id LIKE 'old-%'"
                ).fetchone()[0]
        finally:
            await server.stop(grace_s=1)
    return {
        "stored_jobs": jobs,
        "fill_s": round(fill_s, 1),
        "rate_per_s": rate,
        "batch_size": settings.retention.batch_size,
        "seconds": seconds,
        "quiet_p50_ms": round(percentile(quiet, 50) * 1e3, 2),
        "quiet_p99_ms": round(percentile(quiet, 99) * 1e3, 2),
        "pruning_p50_ms": round(percentile(busy, 50) * 1e3, 2),
        "pruning_p99_ms": round(percentile(busy, 99) * 1e3, 2),
        "pruned_during_run": jobs - left,
        "pruned_per_s": round((jobs - left) / seconds),
    }


def main() -> None:
    """Run the row and print it (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=1_000_000, help="stored finished jobs")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each run")
    parser.add_argument("--rate", type=float, default=200.0, help="launches per second")
    parser.add_argument("--batch-size", type=int, help="jobs per pruning pass [the default]")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    row = asyncio.run(measure(args.jobs, args.seconds, args.rate, args.batch_size))
    if args.json:
        print(json.dumps(row))
        return
    print(
        f"launch p50/p99 at {row['rate_per_s']:.0f}/s over {row['stored_jobs']:,} stored jobs: "
        f"{row['quiet_p50_ms']} / {row['quiet_p99_ms']} ms without pruning, "
        f"{row['pruning_p50_ms']} / {row['pruning_p99_ms']} ms while a sweep pruned "
        f"{row['pruned_during_run']:,} jobs ({row['pruned_per_s']:,}/s, "
        f"passes of {row['batch_size']})"
    )


if __name__ == "__main__":
    main()
