"""Pages (WAL frames) each job transition writes per commit: `python -m bench.wal_pages`.

Opens a `SqliteStore` on a fresh file, fills it with N finished jobs, then commits one batch of
B launches, claims, starts and finishes, and reads how many frames each commit appended to the
WAL (automatic checkpoints off). Every frame is one whole page, written and fsynced, so this is
what a commit costs on disk besides its fsync.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from provena_jobd.job_ids import new_id
from provena_jobd.models import JobStatus
from provena_jobd.queue.sqlite import SqliteStore
from provena_jobd.queue.store import Claim, ClaimedJob, Finish, Lease, NewJob

PAGE = 4096
USERS = 50


def new_jobs(n: int) -> list[NewJob]:
    """`n` no-op EMAIL jobs of `USERS` users."""
    now = time.time()  # the launch time, as jobd's service passes it (ms in the ids)
    return [
        NewJob(
            session_id=new_id(now),
            created_timestamp=int(now),
            username=f"user{i % USERS}",
            batch_id=None,
            new_batch=False,
            job_type="EMAIL",
            job_sub_type="EMAIL_WAKE_UP",
            payload=b"{}",
            max_attempts=3,
            run_after=0.0,
        )
        for i in range(n)
    ]


async def claim(store: SqliteStore, n: int) -> list[ClaimedJob]:
    """Claim up to `n` EMAIL jobs."""
    now = time.time()
    return await store.claim(
        Claim(job_type="EMAIL", limit=n, worker_id="bench", now=now, lease_expires_at=now + 60)
    )


async def finish(store: SqliteStore, jobs: list[ClaimedJob]) -> None:
    """End every job SUCCEEDED, in one batch."""
    now = time.time()
    await asyncio.gather(
        *(
            store.finish(
                Finish(
                    session_id=j.session_id,
                    attempt=j.attempt,
                    status=JobStatus.SUCCEEDED,
                    info="done",
                    result=b"{}",
                    now=now,
                )
            )
            for j in jobs
        )
    )


async def measure(stored: int, batch: int) -> dict[str, int]:
    """WAL frames of each transition's commit for `batch` jobs, with `stored` jobs in the table."""
    with tempfile.TemporaryDirectory(prefix="jobd-pages-") as tmp:
        db = Path(tmp) / "pages.db"
        store = SqliteStore(db)
        await store.open()
        try:
            await store.writer.call(lambda c: c.execute("PRAGMA wal_autocheckpoint = 0"))
            for _ in range(0, stored, 1000):
                await store.launch(new_jobs(1000))
                await finish(store, await claim(store, 1000))
            await store.writer.call(lambda c: c.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
            wal = Path(f"{db}-wal")

            def frames() -> int:
                return max(0, wal.stat().st_size - 32) // (PAGE + 24)

            counts: dict[str, int] = {}
            before = frames()
            await store.launch(new_jobs(batch))
            counts["launch"], before = frames() - before, frames()
            jobs = await claim(store, batch)
            counts["claim"], before = frames() - before, frames()
            await asyncio.gather(
                *(store.start(Lease(j.session_id, j.attempt), "started", time.time()) for j in jobs)
            )
            await store.writer.call(lambda c: None)  # the starts' commit is done
            counts["start"], before = frames() - before, frames()
            await finish(store, jobs)
            counts["finish"] = frames() - before
            return counts
        finally:
            await store.close()


def main() -> None:
    """Print the table for a few table sizes and batch sizes."""
    print(f"SQLite {sqlite3.sqlite_version}, page {PAGE} B; pages (KB) per commit")
    for stored, batch in [(10_000, 1), (10_000, 3), (10_000, 64), (100_000, 64)]:
        counts = asyncio.run(measure(stored, batch))
        row = ", ".join(f"{k} {v} ({v * PAGE // 1024} KB)" for k, v in counts.items())
        print(f"{stored:>7,} jobs stored, batch of {batch:>2}: {row}")


if __name__ == "__main__":
    main()
