"""Seeded kill -9 soak: N random SIGKILLs of a real `jobd serve` under load, on one database.

Not a CI test (it runs for minutes); the acceptance suite's tests/acceptance/test_crash.py
is its one-trial version. Each trial starts jobd on the same database, launches from many
clients at once while jobs run, and SIGKILLs it after a random number of acknowledged
launches. After each kill the database file is read directly and checked:

- lost:    an acknowledged launch (a 200 whose body was read) is not in the database;
- changed: a job seen finished after an earlier kill has a different outcome now.

After the last trial jobd is started once more and must finish every job:

- stuck:   a job is not SUCCEEDED within --finish-s (every job is a no-op wake-up).

    .venv/bin/python bench/soak.py --trials 300 --seed 18

The same seed gives the same kill points (the timing underneath them still varies).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.acceptance.support import burst_until_struck, list_all_jobs  # noqa: E402
from tests.process import start  # noqa: E402

CONFIG = "[pool]\ncold_start_s = 0.05\nconcurrency = 8\nmax_workers = 4\n"
Outcome = tuple[Any, ...]
ARGS = ["--port", "0", "--log-level", "WARNING"]


def read_database(db: Path) -> dict[str, tuple[str, Outcome]]:
    """Every job in the (unserved) database: id -> (status, outcome)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        rows = connection.execute(
            "SELECT session_id, status, info, result, finished_timestamp, attempt FROM jobs"
        ).fetchall()
    return {row[0]: (row[1], tuple(row[1:])) for row in rows}


async def trial(folder: Path, db: Path, config: Path, rng: random.Random) -> tuple[list[str], int]:
    """One start, burst and SIGKILL; returns the acknowledged launches and the kill point."""
    server = start([*ARGS, "--config", str(config), "--db", str(db)], folder)
    after = rng.randint(1, 400)
    senders = rng.choice([8, 32, 64])
    burst = await burst_until_struck(server.url, server.process.kill, after, senders=senders)
    server.kill()
    bad = burst.errors_before_strike + burst.other_answers
    if bad:
        raise SystemExit(f"unexpected answers before the kill: {bad[:3]}")
    return burst.acknowledged, after


async def finish_everything(folder: Path, db: Path, config: Path, within_s: float) -> list[Any]:
    """Start jobd once more and wait until every job has finished (or give up)."""
    server = start([*ARGS, "--config", str(config), "--db", str(db)], folder)
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + within_s
            while True:
                jobs = await list_all_jobs(session, server.url)
                done = all(job["status"] in {"SUCCEEDED", "FAILED"} for job in jobs)
                if done or time.monotonic() > deadline:
                    return jobs
                await asyncio.sleep(0.5)
    finally:
        code, _ = server.stop()
        if code != 0:
            print(f"warning: the final jobd exited {code}", file=sys.stderr)


async def soak(trials: int, seed: int, finish_s: float) -> dict[str, Any]:
    """Run the trials and return the figures."""
    rng = random.Random(seed)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="jobd-soak-") as name:
        folder = Path(name)
        db = folder / "jobd.db"
        config = folder / "soak.toml"
        config.write_text(CONFIG)
        acknowledged: set[str] = set()
        finished: dict[str, Outcome] = {}
        lost: set[str] = set()
        changed: set[str] = set()
        for number in range(1, trials + 1):
            acks, after = await trial(folder, db, config, rng)
            acknowledged.update(acks)
            stored = read_database(db)
            lost |= acknowledged - stored.keys()
            for session_id, (status, outcome) in stored.items():
                if status not in {"SUCCEEDED", "FAILED"}:
                    continue
                if finished.setdefault(session_id, outcome) != outcome:
                    changed.add(session_id)
            if number % 10 == 0 or number == trials:
                print(
                    f"trial {number}/{trials}: kill after {after} acks; "
                    f"{len(acknowledged)} acknowledged, {len(lost)} lost, "
                    f"{len(changed)} changed",
                    file=sys.stderr,
                    flush=True,
                )
        jobs = await finish_everything(folder, db, config, finish_s)
        stuck = [job["session_id"] for job in jobs if job["status"] != "SUCCEEDED"]
        final = {job["session_id"]: job for job in jobs}
        for session_id, outcome in finished.items():
            job = final.get(session_id)
            if job is None or job["status"] != outcome[0] or job["attempt"] != outcome[-1]:
                changed.add(session_id)
    return {
        "seed": seed,
        "trials": trials,
        "acknowledged": len(acknowledged),
        "jobs_in_database": len(jobs),
        "lost": len(lost),
        "stuck": len(stuck),
        "changed": len(changed),
        "examples": {"lost": sorted(lost)[:3], "stuck": stuck[:3], "changed": sorted(changed)[:3]},
        "seconds": round(time.monotonic() - started, 1),
    }


def main() -> None:
    """Parse the arguments, soak, print the figures as JSON; exit 1 if anything went wrong."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--finish-s", type=float, default=300.0, help="final run's time limit")
    args = parser.parse_args()
    figures = asyncio.run(soak(args.trials, args.seed, args.finish_s))
    print(json.dumps(figures, indent=2))
    if figures["lost"] or figures["stuck"] or figures["changed"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
