"""The yardstick: a raw batched SQLite job loop, the most a queue on this disk can do.

`python bench/raw_sqlite.py [N]` enqueues N no-op jobs, 100 per commit, then drains them the
simplest way a durable queue can: claim 100 (one UPDATE ... RETURNING, one commit), run
nothing, mark them done (one guarded UPDATE each, one commit). A job row like jobd's (a UUID
key, type, status, attempt, JSON payload and result, timestamps) with one partial index for
waiting jobs; WAL, `synchronous=FULL`, so every commit is fsynced, as in jobd. Timed from the
first insert to the last job done, like jobd's in-process run, which is compared with it.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY, session_id TEXT NOT NULL UNIQUE, job_type TEXT NOT NULL,
    status TEXT NOT NULL, attempt INTEGER NOT NULL DEFAULT 0, payload BLOB NOT NULL,
    result BLOB, created REAL NOT NULL, finished REAL
);
CREATE INDEX jobs_waiting ON jobs (job_type) WHERE status = 'PENDING';
"""
INSERT = "INSERT INTO jobs (session_id, job_type, status, payload, created) VALUES (?, ?, ?, ?, ?)"
CLAIM = """
UPDATE jobs SET status = 'RUNNING', attempt = attempt + 1
WHERE seq IN (SELECT seq FROM jobs WHERE status = 'PENDING' AND job_type = 'EMAIL'
              ORDER BY seq LIMIT ?)
RETURNING session_id, attempt
"""
DONE = """
UPDATE jobs SET status = 'DONE', result = '{}', finished = ?
WHERE session_id = ? AND attempt = ? AND status = 'RUNNING'
"""


def connect(path: Path) -> sqlite3.Connection:
    """A WAL connection that fsyncs every commit."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")
    return connection


def commit(connection: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """One fsynced transaction of one statement over many rows."""
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany(sql, rows)
    connection.execute("COMMIT")


def drain_rate(path: Path, n: int, batch: int = 100) -> float:
    """Enqueue `n` jobs, then claim and mark done `batch` at a time: jobs per second."""
    connection = connect(path)
    connection.executescript(SCHEMA)
    start = time.perf_counter()
    for first in range(0, n, batch):
        now = time.time()
        rows = [(str(uuid.uuid4()), "EMAIL", "PENDING", b"{}", now) for _ in range(batch)]
        commit(connection, INSERT, rows[: n - first])
    done = 0
    while True:
        connection.execute("BEGIN IMMEDIATE")
        ids = connection.execute(CLAIM, (batch,)).fetchall()
        connection.execute("COMMIT")
        if not ids:
            break
        # the no-op jobs run here
        commit(connection, DONE, [(time.time(), *claimed) for claimed in ids])
        done += len(ids)
    elapsed = time.perf_counter() - start
    connection.close()
    assert done == n, f"drained {done} of {n}"
    return n / elapsed


def fsync_rate(folder: Path, seconds: float = 0.5) -> float:
    """fsyncs per second of a small appended file in `folder`: what one commit costs here."""
    path = folder / "fsync-probe"
    count = 0
    with open(path, "ab") as handle:
        deadline = time.perf_counter() + seconds
        start = time.perf_counter()
        while time.perf_counter() < deadline:
            handle.write(b"x" * 4096)
            handle.flush()
            os.fsync(handle.fileno())
            count += 1
        elapsed = time.perf_counter() - start
    path.unlink()
    return count / elapsed


def main() -> None:
    """Print the fsync rate and the raw loop's drain rate."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory(prefix="jobd-raw-") as tmp:
        print(f"fsync: {fsync_rate(Path(tmp)):,.0f}/s")
        print(f"raw batched SQLite loop: {drain_rate(Path(tmp) / 'raw.db', n):,.0f} jobs/s")


if __name__ == "__main__":
    main()
