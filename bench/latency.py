"""Run 3: launch -> IN_PROGRESS latency at light load on a warm pool."""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import time
from pathlib import Path

from bench.cpu import CpuWatch, report_contention
from bench.httpclient import HttpConn, build_request, check_all_succeeded, wait_finished
from bench.report import Report, Row, at_most, percentile
from bench.server import HOST, LAUNCH_BODY, LAUNCH_PATH, jobd_server, write_config

# -- 3: launch -> IN_PROGRESS latency at light load ------------------------------------------


def bench_latency(args: argparse.Namespace, report: Report, workdir: Path) -> None:
    """Sequential launches with gaps; started_timestamp minus the client's send time."""
    n = args.latency_jobs
    gap = args.latency_gap_ms / 1000
    print(f"[3] launch -> IN_PROGRESS latency: {n:,} sequential launches", flush=True)
    db = workdir / "latency.db"
    config = workdir / "jobd.toml"
    write_config(config, args.max_workers, args.concurrency)
    sent: dict[str, float] = {}
    rtts: list[float] = []
    with jobd_server(workdir, db, config) as server, HttpConn(HOST, server.port) as conn:
        body = LAUNCH_BODY
        # Warm the pool: one wake-up job run to the end leaves a ready worker behind.
        conn.json("POST", LAUNCH_PATH, json.loads(body))
        wait_finished(conn, 1, 60, 0.005)
        for _ in range(args.warmup):  # warm code paths; not measured
            conn.json("POST", LAUNCH_PATH, json.loads(body))
            time.sleep(gap)
        wait_finished(conn, 1 + args.warmup, 60, 0.005)
        request = build_request("POST", LAUNCH_PATH, conn.host, body)
        watch = CpuWatch([server.pid])
        for _ in range(n):
            t0 = time.perf_counter()
            at = time.time()
            conn.sock.sendall(request)
            status, data = conn.read_response()
            rtts.append(time.perf_counter() - t0)
            if status != 200:
                raise RuntimeError(f"launch failed: HTTP {status}: {data[:300]!r}")
            sent[json.loads(data)["session_id"]] = at
            time.sleep(gap)
        wait_finished(conn, 1 + args.warmup + n, 60, 0.005)
        other = watch.other_cores()
    check_all_succeeded(db, 1 + args.warmup + n)
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        rows = connection.execute(
            "SELECT session_id, started_timestamp, finished_timestamp FROM jobs"
        ).fetchall()
    to_start = [(r[1] - sent[r[0]]) * 1e3 for r in rows if r[0] in sent]
    to_finish = [(r[2] - sent[r[0]]) * 1e3 for r in rows if r[0] in sent]
    p50, p99 = percentile(to_start, 50), percentile(to_start, 99)
    report.score, report.unit = p99, "ms p99"
    ok50, v50 = at_most(p50, args.target_p50_ms)
    ok99, v99 = at_most(p99, args.target_p99_ms)
    report.add(
        Row(
            "3",
            "launch -> IN_PROGRESS, p50",
            f"{p50:.2f} ms",
            f"<= {args.target_p50_ms:g} ms",
            ok50,
            v50,
        )
    )
    report.add(
        Row(
            "3",
            "launch -> IN_PROGRESS, p99",
            f"{p99:.2f} ms",
            f"<= {args.target_p99_ms:g} ms",
            ok99,
            v99,
        )
    )
    report.add(
        Row(
            "3a",
            "  launch -> SUCCEEDED, p50 / p99",
            f"{percentile(to_finish, 50):.2f} / {percentile(to_finish, 99):.2f} ms",
        )
    )
    report.add(
        Row(
            "3b",
            "  launch round trip (client), p50 / p99",
            f"{percentile(rtts, 50) * 1e3:.2f} / {percentile(rtts, 99) * 1e3:.2f} ms",
        )
    )
    report_contention(report, "3c", other, watch)
    report.notes.append(
        "3: started_timestamp is stored rounded to 1 ms, so each latency sample is +-0.5 ms."
    )
    report.data["latency"] = {
        "jobs": n,
        "gap_ms": args.latency_gap_ms,
        "to_start_p50_ms": p50,
        "to_start_p99_ms": p99,
        "to_start_max_ms": max(to_start),
        "to_finish_p50_ms": percentile(to_finish, 50),
        "to_finish_p99_ms": percentile(to_finish, 99),
        "rtt_p50_ms": percentile(rtts, 50) * 1e3,
        "rtt_p99_ms": percentile(rtts, 99) * 1e3,
        "other_processes_cores": other,
    }
