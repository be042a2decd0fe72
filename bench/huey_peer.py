"""The peer: huey's SQLite storage draining no-op tasks with 4 worker threads.

`python bench/huey_peer.py N [FOLDER]` enqueues N no-op tasks into a fresh `SqliteHuey` with
`fsync=True` (`synchronous=FULL`, WAL: as durable as jobd's default), then starts huey's own
consumer with 4 threads and times it from start to the last task done. Only the drain is timed,
which favours huey: jobd's figures include launching. Prints one JSON object. It runs in its
own process because huey's consumer installs signal handlers.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import threading
import time
from pathlib import Path

from huey import SqliteHuey

WORKERS = 4


def drain_rate(folder: Path, n: int, workers: int = WORKERS) -> float:
    """Enqueue `n` no-op tasks, then drain them with `workers` threads: tasks per second."""
    huey = SqliteHuey("bench", filename=str(folder / "huey.db"), fsync=True, results=False)
    done = 0
    lock = threading.Lock()
    all_done = threading.Event()

    @huey.task()  # type: ignore[untyped-decorator]
    def no_op() -> None:
        nonlocal done
        with lock:
            done += 1
            if done == n:
                all_done.set()

    for _ in range(n):
        no_op()
    # A short idle back-off, so a worker that finds the queue briefly empty is not asleep long.
    consumer = huey.create_consumer(
        workers=workers, worker_type="thread", periodic=False, initial_delay=0.001, max_delay=0.01
    )
    start = time.perf_counter()
    consumer.start()
    finished = all_done.wait(timeout=60 + n / 100)
    elapsed = time.perf_counter() - start
    consumer.stop(graceful=True)
    if not finished:
        raise SystemExit(f"huey drained only {done} of {n} tasks")
    return n / elapsed


def main() -> None:
    """Print `{"jobs_per_s": ...}` for N tasks."""
    logging.getLogger("huey").setLevel(logging.WARNING)
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    if len(sys.argv) > 2:
        rate = drain_rate(Path(sys.argv[2]), n)
    else:
        with tempfile.TemporaryDirectory(prefix="jobd-huey-") as tmp:
            rate = drain_rate(Path(tmp), n)
    print(json.dumps({"jobs": n, "workers": WORKERS, "jobs_per_s": rate}))


if __name__ == "__main__":
    main()
