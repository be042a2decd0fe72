"""A/B: the in-process throughput (run 2 of bench.run) with and without the attempt-history
triggers (0006_attempt_history.sql), alternated in one run so a shared machine's noise hits
both alike.

    .venv/bin/python -m bench.history_ab [jobs] [pairs]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
from pathlib import Path

from bench.throughput import _inproc
from provena_jobd.queue.sqlite import SqliteStore

TRIGGERS = ("job_attempt_claimed", "job_attempt_started", "job_attempt_ended")


def _database(folder: Path, history: bool) -> Path:
    """A migrated database, its history triggers dropped for the A side."""
    db = folder / f"{'with' if history else 'without'}.db"
    asyncio.run(_migrate(db))
    if not history:
        with sqlite3.connect(db) as connection:
            for trigger in TRIGGERS:
                connection.execute(f"DROP TRIGGER {trigger}")
    return db


async def _migrate(db: Path) -> None:
    store = SqliteStore(db)
    await store.open()
    await store.close()


def main() -> None:
    """Alternate A (no history) and B (history) `pairs` times; print each rate and medians."""
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    args = argparse.Namespace(
        inproc_jobs=jobs,
        warmup=200,
        max_workers=3,
        concurrency=256,
        inproc_chunk=1000,
        inproc_lanes=4,
    )
    rates: dict[bool, list[float]] = {False: [], True: []}
    for pair in range(pairs):
        for history in (False, True) if pair % 2 == 0 else (True, False):
            with tempfile.TemporaryDirectory() as folder:
                db = _database(Path(folder), history)
                result = asyncio.run(_inproc(args, db))
            rate = jobs / (result["done"] - result["start"])
            rates[history].append(rate)
            print(f"pair {pair + 1} {'with' if history else 'without'} history: {rate:,.0f} jobs/s")
    without, with_ = statistics.median(rates[False]), statistics.median(rates[True])
    print(
        f"median without {without:,.0f} jobs/s, with {with_:,.0f} jobs/s: "
        f"cost {100 * (1 - with_ / without):.1f}%"
    )


if __name__ == "__main__":
    main()
