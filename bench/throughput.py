"""Runs 1 and 2: HTTP launch throughput (with peak RSS) and in-process throughput."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench.cpu import CpuWatch, proc_cpu_s, proc_status_kb, report_contention, thread_cpu_s
from bench.httpclient import HttpConn, check_all_succeeded, wait_finished
from bench.loadgen import run_loaders, run_loop
from bench.peers import add_ratio, huey_rate, no_huey, raw_rate
from bench.report import Report, Row, at_most, percentile
from bench.server import HOST, LAUNCH_BODY, LAUNCH_PATH, jobd_server, write_config

# -- 1 and 5: HTTP launch throughput, and the server's peak RSS ------------------------------


def bench_default(args: argparse.Namespace, report: Report, workdir: Path) -> None:
    """Run 0: as run 1, at jobd's default pool settings (3 workers x 1 job), against huey."""
    _http_run(args, report, workdir, "0", 1, args.target_huey_default)


def bench_launch(args: argparse.Namespace, report: Report, workdir: Path) -> None:
    """Run 1 (and 5): at `--max-workers` x `--concurrency`, against huey; the peak RSS."""
    _http_run(args, report, workdir, "1", args.concurrency, args.target_huey)


def _http_run(
    args: argparse.Namespace,
    report: Report,
    workdir: Path,
    number: str,
    concurrency: int,
    huey_target: float,
) -> None:
    """N launches from concurrent keep-alive clients until every job has SUCCEEDED."""
    n = args.jobs
    pool = f"{args.max_workers} x {concurrency}"
    print(f"[{number}] HTTP launch throughput: {n:,} jobs, {args.clients} clients, {pool}")
    db = workdir / "launch.db"
    config = workdir / "jobd.toml"
    write_config(config, args.max_workers, concurrency)
    warmup = args.warmup
    with jobd_server(workdir, db, config) as server:
        with HttpConn(HOST, server.port) as conn:
            # Warm up: code paths, the pool's workers, SQLite's cache.
            for _ in range(warmup):
                conn.json("POST", LAUNCH_PATH, json.loads(LAUNCH_BODY))
            wait_finished(conn, warmup, 60, 0.01)
        rss_idle = proc_status_kb(server.pid, "VmRSS")
        cpu0 = proc_cpu_s(server.pid)
        loop0, threads0 = thread_cpu_s(server.pid)
        watch = CpuWatch([server.pid])
        timeout = 60 + n / 200
        load = run_loaders(HOST, server.port, n, args.clients, args.loaders, timeout)
        with HttpConn(HOST, server.port) as conn:
            seen_done = wait_finished(conn, warmup + n, timeout, 0.005)
        cpu = proc_cpu_s(server.pid) - cpu0
        other = watch.other_cores()
        loop1, threads1 = thread_cpu_s(server.pid)
        hwm = proc_status_kb(server.pid, "VmHWM")
    check_all_succeeded(db, warmup + n)
    if load["errors"] or load["ok"] != n:
        raise RuntimeError(f"{load['errors']} launches failed: {load['first_error'][:500]}")
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        (last_finish,) = connection.execute("SELECT max(finished_timestamp) FROM jobs").fetchone()
    # finished_timestamp is stored to the millisecond; the poll saw it at most ~5 ms later.
    end = min(seen_done, float(last_finish) + 0.001)
    elapsed = end - load["first"]
    rate = n / elapsed
    report.score, report.unit = rate, "jobs/s"
    ack_rate = n / (load["last"] - load["first"])
    lat = load["latencies"]
    report.add(
        Row(
            number,
            f"HTTP launch -> all SUCCEEDED ({n:,} jobs, {args.clients} clients, pool {pool})",
            f"{rate:,.0f} jobs/s",
        )
    )
    report.add(
        Row(f"{number}a", "  launches acknowledged (HTTP 200, durable)", f"{ack_rate:,.0f} req/s")
    )
    p99 = percentile(lat, 99) * 1e3
    ok, verdict = at_most(p99, args.target_launch_p99_ms)
    report.add(
        Row(
            f"{number}b",
            "  launch round trip under that load, p50 / p99",
            f"{percentile(lat, 50) * 1e3:.1f} / {p99:.1f} ms",
            f"p99 <= {args.target_launch_p99_ms:g} ms",
            ok,
            verdict,
        )
    )
    report.add(
        Row(
            f"{number}c",
            "  CPU used: server / load generator",
            f"{cpu / elapsed:.2f} / {load['cpu_s'] / elapsed:.2f} cores",
        )
    )
    report.add(
        Row(
            f"{number}d",
            "  server CPU: event-loop thread / SQLite threads",
            f"{(loop1 - loop0) / elapsed:.2f} / {(threads1 - threads0) / elapsed:.2f} cores",
        )
    )
    report_contention(report, f"{number}e", other, watch)
    huey = huey_rate(n, workdir, timeout)
    if huey is None:
        no_huey(report, f"{number}f")
    else:
        add_ratio(report, f"{number}f", "jobd", rate, "huey (SQLite, 4 threads)", huey, huey_target)
    report.data[f"http_{args.max_workers}x{concurrency}"] = {
        "jobs": n,
        "elapsed_s": elapsed,
        "jobs_per_s": rate,
        "ack_per_s": ack_rate,
        "launch_p99_ms": p99,
        "huey_jobs_per_s": huey,
        "server_cpu_cores": cpu / elapsed,
        "server_loop_thread_cores": (loop1 - loop0) / elapsed,
        "server_other_threads_cores": (threads1 - threads0) / elapsed,
        "loader_cpu_cores": load["cpu_s"] / elapsed,
        "peak_rss_mb": hwm / 1024,
        "other_processes_cores": other,
    }
    if number != "1":
        return
    ok, verdict = at_most(hwm / 1024, args.target_rss_mb)
    report.add(
        Row(
            "5",
            "server peak RSS during run 1 (VmHWM)",
            f"{hwm / 1024:.1f} MB",
            f"<= {args.target_rss_mb:g} MB",
            ok,
            verdict,
        )
    )
    report.add(Row("5a", "  server RSS when idle, before the load", f"{rss_idle / 1024:.1f} MB"))


# -- 2: in-process enqueue -> SUCCEEDED -------------------------------------------------------


async def _inproc(args: argparse.Namespace, db: Path) -> dict[str, Any]:
    from provena_jobd.config import from_dict
    from provena_jobd.models import JobSubType, JobType, LaunchJobRequest
    from provena_jobd.queue.sqlite import SqliteStore
    from provena_jobd.server import JobdServer, tune_gc

    n = args.inproc_jobs
    settings = from_dict(
        {
            "storage": {"db": str(db)},
            "pool": {"max_workers": args.max_workers, "concurrency": args.concurrency},
        }
    )
    server = JobdServer(settings)
    await server.start()
    tune_gc()  # as `jobd serve` does
    try:
        request = LaunchJobRequest(
            job_type=JobType.EMAIL, job_sub_type=JobSubType.EMAIL_WAKE_UP, job_payload={}
        )
        pool = server.pools[JobType.EMAIL]
        launch = server.service.launch
        deadline = time.monotonic() + 60 + n / 1000

        async def until_finished(count: int) -> None:
            while pool.jobs_finished < count:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"only {pool.jobs_finished} of {count} jobs finished")
                await asyncio.sleep(0.001)

        for _ in range(args.warmup):
            await launch(request, caller="bench")
        await until_finished(args.warmup)
        writer = server.store.writer if isinstance(server.store, SqliteStore) else None
        batches0, writes0 = (writer.batches, writer.writes) if writer else (0, 0)
        left = n

        async def lane() -> None:
            nonlocal left
            while left > 0:
                take = min(args.inproc_chunk, left)
                left -= take
                await asyncio.gather(*(launch(request, caller="bench") for _ in range(take)))

        loop0, threads0 = thread_cpu_s(os.getpid())
        watch = CpuWatch()
        start = time.time()
        await asyncio.gather(*(lane() for _ in range(args.inproc_lanes)))
        enqueued = time.time()
        await until_finished(args.warmup + n)
        done = time.time()
        loop1, threads1 = thread_cpu_s(os.getpid())
        other = watch.other_cores()
        batches = writer.batches - batches0 if writer else 0
        writes = writer.writes - writes0 if writer else 0
    finally:
        await server.stop()
    return {
        "start": start,
        "enqueued": enqueued,
        "done": done,
        "batches": batches,
        "writes": writes,
        "loop_cpu_s": loop1 - loop0,
        "threads_cpu_s": threads1 - threads0,
        "other_cores": other,
        "watch": watch,
    }


def bench_inproc(args: argparse.Namespace, report: Report, workdir: Path) -> None:
    """service.launch() called directly, N jobs, until all SUCCEEDED; no HTTP."""
    n = args.inproc_jobs
    print(f"[2] in-process enqueue -> SUCCEEDED: {n:,} jobs", flush=True)
    db = workdir / "inproc.db"
    cpu0 = time.process_time()
    result = run_loop(_inproc(args, db))
    cpu = time.process_time() - cpu0
    check_all_succeeded(db, args.warmup + n)
    elapsed = result["done"] - result["start"]
    rate = n / elapsed
    report.score, report.unit = rate, "jobs/s"
    report.add(Row("2", f"in-process launch -> all SUCCEEDED ({n:,} jobs)", f"{rate:,.0f} jobs/s"))
    enqueue_rate = n / (result["enqueued"] - result["start"])
    report.add(Row("2a", "  launches enqueued (durable)", f"{enqueue_rate:,.0f} jobs/s"))
    if result["batches"]:
        per_batch = result["writes"] / result["batches"]
        report.add(
            Row(
                "2b",
                "  group commit: transactions (fsyncs), writes per transaction",
                f"{result['batches']:,}, {per_batch:,.0f} ({result['batches'] / elapsed:,.0f}/s)",
            )
        )
    report.add(
        Row(
            "2c",
            "  CPU: event-loop thread / SQLite threads",
            f"{result['loop_cpu_s'] / elapsed:.2f} / {result['threads_cpu_s'] / elapsed:.2f} cores",
        )
    )
    report_contention(report, "2d", result["other_cores"], result["watch"])
    raw = raw_rate(n, workdir)
    add_ratio(
        report, "2e", "jobd in process", rate, "the raw batched SQLite loop", raw, args.target_raw
    )
    report.data["inproc"] = {
        "jobs": n,
        "elapsed_s": elapsed,
        "jobs_per_s": rate,
        "enqueue_per_s": enqueue_rate,
        "commits": result["batches"],
        "writes": result["writes"],
        "process_cpu_s": cpu,
        "loop_thread_cores": result["loop_cpu_s"] / elapsed,
        "other_threads_cores": result["threads_cpu_s"] / elapsed,
        "other_processes_cores": result["other_cores"],
        "raw_loop_jobs_per_s": raw,
    }
