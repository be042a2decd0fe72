"""Run 4: fetch and list latency with a million stored jobs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import shutil
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.cpu import CpuWatch, report_contention
from bench.httpclient import HttpConn, build_request
from bench.report import Report, Row, at_most, percentile
from bench.server import HOST, jobd_server, write_config

FILL_VERSION = 1  # bump when the pre-filled database's contents change
FILL_BASE_TS = 1_700_000_000  # created_timestamp of the first pre-filled job
FILL_JOBS_PER_SECOND = 10
FILL_BATCH_SIZE = 50  # every tenth block of this many jobs is one user's batch
FILL_JOBS_PER_USER = 1000  # 1,000 users for a million jobs; plus "local", the caller of the
FILL_MAX_USERS = 1000  # /jobs/user routes in auth mode none
LOCAL_USER = "local"
# -- 4: fetch and list latency with a million stored jobs -------------------------------------

# The reference's job types and sub types; the pre-filled jobs cycle through them.
FILL_SUB_TYPES: tuple[tuple[str, str], ...] = (
    ("PROV_LODGE", "PROV_LODGE_WAKE_UP"),
    ("PROV_LODGE", "MODEL_RUN_PROV_LODGE"),
    ("PROV_LODGE", "MODEL_RUN_LODGE_ONLY"),
    ("PROV_LODGE", "MODEL_RUN_BATCH_SUBMIT"),
    ("PROV_LODGE", "LODGE_CREATE_ACTIVITY"),
    ("PROV_LODGE", "LODGE_VERSION_ACTIVITY"),
    ("PROV_LODGE", "MODEL_RUN_UPDATE"),
    ("PROV_LODGE", "MODEL_RUN_UPDATE_LODGE_ONLY"),
    ("REGISTRY", "REGISTRY_WAKE_UP"),
    ("REGISTRY", "REGISTER_CREATE_ACTIVITY"),
    ("REGISTRY", "REGISTER_VERSION_ACTIVITY"),
    ("EMAIL", "EMAIL_WAKE_UP"),
    ("EMAIL", "SEND_EMAIL"),
    ("REPORT", "GENERATE_REPORT"),
)


def fill_users(n: int) -> list[str]:
    """The owners of n pre-filled jobs; the last is the local user."""
    count = max(10, min(FILL_MAX_USERS, n // FILL_JOBS_PER_USER))
    return [f"user{k:04d}" for k in range(count)] + [LOCAL_USER]


def _uuid_of(text: str) -> str:
    h = hashlib.md5(text.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def session_id_of(i: int) -> str:
    """The session id of pre-filled job number i (deterministic, UUID-shaped)."""
    return _uuid_of(f"jobd-bench-job-{i}")


def created_of(i: int) -> int:
    """The created_timestamp of pre-filled job number i."""
    return FILL_BASE_TS + i // FILL_JOBS_PER_SECOND


def owner_of(i: int, users: Sequence[str]) -> tuple[str, str | None]:
    """Pre-filled job i's username and batch: every tenth block of jobs is one user's batch."""
    block = i // FILL_BATCH_SIZE
    if block % 10 == 0:
        return users[block % len(users)], _uuid_of(f"jobd-bench-batch-{block}")
    return users[i % len(users)], None


def _fill_rows(n: int, users: Sequence[str]) -> Iterator[tuple[Any, ...]]:
    sub_types = FILL_SUB_TYPES
    payload, result = b'{"bench": true}', b"{}"
    for i in range(n):
        username, batch_id = owner_of(i, users)
        created = created_of(i)
        job_type, sub_type = sub_types[i % len(sub_types)]
        failed = i % 20 == 7
        yield (
            i + 1,
            session_id_of(i),
            created,
            username,
            batch_id,
            job_type,
            sub_type,
            "FAILED" if failed else "SUCCEEDED",
            "Job failed, err: bench." if failed else None,
            payload,
            None if failed else result,
            1,
            3,
            float(created),
            created + 0.01,
            created + 0.02,
        )


def _schema_key() -> str:
    from provena_jobd.queue.dialect import migrations

    digest = hashlib.sha256(f"fill-v{FILL_VERSION}".encode())
    for migration in migrations("sqlite"):
        digest.update(migration.sql.encode())
    return digest.hexdigest()[:16]


async def _migrate(db: Path) -> None:
    from provena_jobd.queue.sqlite import SqliteStore

    store = SqliteStore(db)
    await store.open()
    await store.close()


def build_filled_db(path: Path, n: int) -> None:
    """Create a database the way jobd does, then bulk-insert n finished jobs into it."""
    asyncio.run(_migrate(path))
    users = fill_users(n)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as connection:
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute("PRAGMA cache_size = -262144")
        # Drop the secondary indexes, load, then rebuild them from their own SQL: faster.
        indexes = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        ).fetchall()
        connection.execute("BEGIN")
        for name, _ in indexes:
            connection.execute(f'DROP INDEX "{name}"')
        rows = _fill_rows(n, users)
        insert = (
            "INSERT INTO jobs (seq, session_id, created_timestamp, username, batch_id, job_type,"
            " job_sub_type, status, info, payload, result, attempt, max_attempts, run_after,"
            " started_timestamp, finished_timestamp) VALUES"
            " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        connection.executemany(insert, rows)
        blocks = range(0, (n + FILL_BATCH_SIZE - 1) // FILL_BATCH_SIZE, 10)
        connection.executemany(
            "INSERT INTO batches (batch_id, username, created_timestamp) VALUES (?, ?, ?)",
            (
                (*owner_of(b * FILL_BATCH_SIZE, users)[::-1], created_of(b * FILL_BATCH_SIZE))
                for b in blocks
            ),
        )
        for _, sql in indexes:
            connection.execute(sql)
        connection.execute("COMMIT")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def filled_db(args: argparse.Namespace, n: int) -> Path:
    """The pre-filled database for n jobs, from the cache or built (and cached) now."""
    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"jobs-{n}-{_schema_key()}.db"
    if path.exists() and not args.no_cache:
        print(f"    using cached {path}", flush=True)
        return path
    for stale in cache.glob(f"jobs-{n}-*.db*"):
        stale.unlink()
    building = cache / f"building-{os.getpid()}.db"
    for leftover in cache.glob(f"{building.name}*"):
        leftover.unlink()
    print(f"    building {n:,} jobs into {path} (cached for next runs)...", flush=True)
    t0 = time.monotonic()
    try:
        build_filled_db(building, n)
        for suffix in ("-wal", "-shm"):
            Path(f"{building}{suffix}").unlink(missing_ok=True)
        building.rename(path)
    finally:
        for leftover in cache.glob(f"{building.name}*"):
            leftover.unlink()
    print(f"    built in {time.monotonic() - t0:.1f} s", flush=True)
    return path


def _list_body(username: str | None, key: dict[str, Any] | None) -> bytes:
    body: dict[str, Any] = {}
    if username is not None:
        body["username_filter"] = username
    if key is not None:
        body["pagination_key"] = key
    return json.dumps(body).encode()


def _read_workload(n: int, rng: random.Random) -> list[tuple[str, str, str, list[bytes | None]]]:
    """Each measured request kind: (label, method, path or path prefix, bodies or ids)."""
    users = fill_users(n)
    local_jobs = [i for i in range(n) if owner_of(i, users)[0] == LOCAL_USER]
    some_users = rng.sample(users[:-1], min(20, len(users) - 1))
    by_user: dict[str, list[int]] = {u: [] for u in some_users}
    for i in range(n):
        owner = owner_of(i, users)[0]
        if owner in by_user:
            by_user[owner].append(i)

    def user_key(i: int, username: str) -> dict[str, Any]:
        return {
            "session_id": session_id_of(i),
            "username": username,
            "created_timestamp": created_of(i),
        }

    def global_key(i: int) -> dict[str, Any]:
        return {
            "session_id": session_id_of(i),
            "gsi_status": "ok",
            "created_timestamp": created_of(i),
        }

    def deep(count: int) -> int:
        """A position past the middle of a newest-first list, with a full page after it."""
        return rng.randrange(count // 2, count - 10)

    def nth_newest(indexes: list[int], position: int) -> int:
        return indexes[-1 - position]

    k = 64
    fetch_ids = [session_id_of(rng.randrange(n)).encode() for _ in range(k * 16)]
    local_ids = [session_id_of(rng.choice(local_jobs)).encode() for _ in range(k * 16)]
    return [
        (
            "GET /jobs/admin/fetch (random job)",
            "GET",
            "/jobs/admin/fetch?session_id=",
            list(fetch_ids),
        ),
        (
            "GET /jobs/user/fetch (random own job)",
            "GET",
            "/jobs/user/fetch?session_id=",
            list(local_ids),
        ),
        (
            "POST /jobs/admin/list username_filter, 1st page",
            "POST",
            "/jobs/admin/list",
            [_list_body(rng.choice(users), None) for _ in range(k)],
        ),
        (
            "POST /jobs/admin/list username_filter, deep page",
            "POST",
            "/jobs/admin/list",
            [
                _list_body(u, user_key(nth_newest(by_user[u], deep(len(by_user[u]))), u))
                for u in (rng.choice(some_users) for _ in range(k))
            ],
        ),
        ("POST /jobs/user/list, 1st page", "POST", "/jobs/user/list", [b"{}"]),
        (
            "POST /jobs/user/list, deep page",
            "POST",
            "/jobs/user/list",
            [
                json.dumps(
                    {
                        "pagination_key": user_key(
                            nth_newest(local_jobs, deep(len(local_jobs))), LOCAL_USER
                        )
                    }
                ).encode()
                for _ in range(k)
            ],
        ),
        ("POST /jobs/admin/list (all users), 1st page", "POST", "/jobs/admin/list", [b"{}"]),
        (
            "POST /jobs/admin/list (all users), deep page",
            "POST",
            "/jobs/admin/list",
            [_list_body(None, global_key(n - 1 - deep(n))) for _ in range(k)],
        ),
    ]


def bench_reads(args: argparse.Namespace, report: Report, workdir: Path) -> None:
    """Sequential fetches and list pages against a server holding many jobs; p99 each."""
    n = args.fill
    print(f"[4] fetch / list latency with {n:,} stored jobs", flush=True)
    source = filled_db(args, n)
    db = workdir / "reads.db"
    shutil.copyfile(source, db)  # the server may write (WAL, startup sweep): keep the cache clean
    config = workdir / "jobd.toml"
    write_config(config, args.max_workers, args.concurrency)
    rng = random.Random(20240601)
    workload = _read_workload(n, rng)
    samples = args.read_samples
    with jobd_server(workdir, db, config) as server, HttpConn(HOST, server.port) as conn:
        watch = CpuWatch([server.pid])
        for label, method, path, variants in workload:
            timings: list[float] = []
            for index in range(args.read_warmup + samples):
                variant = variants[index % len(variants)]
                if method == "GET":
                    assert variant is not None
                    target, body = path + quote(variant.decode()), None
                else:
                    target, body = path, variant
                request = build_request(method, target, conn.host, body)
                t0 = time.perf_counter()
                conn.sock.sendall(request)
                status, data = conn.read_response()
                elapsed = time.perf_counter() - t0
                if status != 200:
                    raise RuntimeError(f"{label}: HTTP {status}: {data[:300]!r}")
                if method == "POST" and len(json.loads(data)["jobs"]) != 10:
                    raise RuntimeError(f"{label}: a page of fewer than 10 jobs: {data[:300]!r}")
                if index >= args.read_warmup:
                    timings.append(elapsed * 1e3)
            p50, p99 = percentile(timings, 50), percentile(timings, 99)
            ok, verdict = at_most(p99, args.target_read_p99_ms)
            report.add(
                Row(
                    "4",
                    f"{label}: p99 (p50)",
                    f"{p99:.2f} ms ({p50:.2f})",
                    f"<= {args.target_read_p99_ms:g} ms",
                    ok,
                    verdict,
                )
            )
            report.data.setdefault("reads", {})[label] = {
                "p50_ms": p50,
                "p99_ms": p99,
                "max_ms": max(timings),
            }
        other = watch.other_cores()
    report.score = max(v["p99_ms"] for v in report.data["reads"].values())
    report.unit = "ms worst p99"
    report_contention(report, "4a", other, watch)
    report.data.setdefault("reads", {})["other_processes_cores"] = other
    report.notes.append(
        f"4: {samples:,} sequential requests per line on one keep-alive connection, after "
        f"{args.read_warmup} unmeasured ones; pages are 10 jobs (the default limit); "
        f"a deep page starts past the middle of its list."
    )
