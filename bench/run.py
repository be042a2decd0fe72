"""jobd's benchmark: launch throughput, in-process throughput, latency, read latency, memory.

Run `make bench` (or `.venv/bin/python -m bench.run --help`). Every server it measures runs
in a fresh temporary folder on 127.0.0.1 with a port the OS picks, at the default durability
(`full`: every commit is fsynced), and runs no-op `EMAIL_WAKE_UP` jobs. What each number means
is in docs/benchmarks.md.

The load generator of the HTTP runs is a hand-written HTTP/1.1 keep-alive client on asyncio
Protocols (uvloop when installed), in its own process, so that it costs the server as little
CPU as possible on a small machine.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import math
import os
import platform
import shutil
import signal
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from bench.cpu import wait_idle
from bench.latency import bench_latency
from bench.raw_sqlite import fsync_rate
from bench.reads import bench_reads
from bench.report import Report, Row, print_table
from bench.server import end_children
from bench.throughput import bench_default, bench_inproc, bench_launch

# -- main ------------------------------------------------------------------------------------

PHASES: dict[str, Callable[[argparse.Namespace, Report, Path], None]] = {
    "default": bench_default,
    "launch": bench_launch,
    "inproc": bench_inproc,
    "latency": bench_latency,
    "reads": bench_reads,
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Benchmark jobd: throughput, latency, read latency at 1M jobs, memory.",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        help="jobs launched over HTTP in runs 0 and 1, and drained by huey [20000]",
    )
    parser.add_argument(
        "--inproc-jobs",
        type=int,
        help="jobs launched in-process in run 2, and by the raw loop [50000]",
    )
    parser.add_argument("--latency-jobs", type=int, help="sequential launches of run 3 [2000]")
    parser.add_argument("--fill", type=int, help="jobs stored for run 4 [1000000]")
    parser.add_argument("--read-samples", type=int, help="requests per read measurement [2000]")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(PHASES),
        help="run only this measurement (repeatable); default: all",
    )
    parser.add_argument("--quick", action="store_true", help="small numbers: a smoke run")
    parser.add_argument("--clients", type=int, default=64, help="concurrent HTTP clients [64]")
    parser.add_argument("--loaders", type=int, default=1, help="load-generator processes [1]")
    parser.add_argument("--max-workers", type=int, default=3, help="pool max_workers [3]")
    parser.add_argument("--concurrency", type=int, default=256, help="pool concurrency [256]")
    parser.add_argument("--inproc-chunk", type=int, default=1000, help="launches per gather [1000]")
    parser.add_argument("--inproc-lanes", type=int, default=4, help="gathers at once [4]")
    parser.add_argument(
        "--latency-gap-ms", type=float, default=5.0, help="pause between run 3's launches [5]"
    )
    parser.add_argument("--warmup", type=int, help="unmeasured jobs before runs 1-3 [200]")
    parser.add_argument(
        "--cache-dir",
        default=str(Path(tempfile.gettempdir()) / "jobd-bench-cache"),
        help="where the pre-filled database of run 4 is kept between runs",
    )
    parser.add_argument("--no-cache", action="store_true", help="rebuild run 4's database")
    parser.add_argument("--json", dest="json_out", help="also write the figures to this file")
    parser.add_argument(
        "--repeat", type=int, help="runs of each measurement; the median is shown [3]"
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=0,
        help="measure again, up to this many times, when other processes spoil a run [0]",
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each measurement, wait up to this long for the machine to be idle [0]",
    )
    parser.add_argument("--timeout", type=float, help="give up after this many seconds [3600]")
    targets = parser.add_argument_group("targets")
    targets.add_argument("--target-huey-default", type=float, default=2.0, help="run 0 / huey")
    targets.add_argument("--target-huey", type=float, default=5.0, help="run 1 / huey")
    targets.add_argument("--target-raw", type=float, default=0.8, help="run 2 / raw loop")
    targets.add_argument("--target-launch-p99-ms", type=float, default=20.0)
    targets.add_argument("--target-p50-ms", type=float, default=2.0)
    targets.add_argument("--target-p99-ms", type=float, default=10.0)
    targets.add_argument("--target-read-p99-ms", type=float, default=5.0)
    targets.add_argument("--target-rss-mb", type=float, default=100.0)
    args = parser.parse_args(argv)
    quick = args.quick
    defaults: dict[str, tuple[int | float, int | float]] = {
        "jobs": (20_000, 2_000),
        "inproc_jobs": (50_000, 5_000),
        "latency_jobs": (2_000, 200),
        "fill": (1_000_000, 20_000),
        "read_samples": (2_000, 200),
        "warmup": (200, 20),
        "timeout": (3600.0, 300.0),
        "repeat": (3, 1),
    }
    for name, (full, small) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    args.read_warmup = 20 if quick else 200
    for name in (
        "jobs",
        "inproc_jobs",
        "latency_jobs",
        "read_samples",
        "clients",
        "loaders",
        "repeat",
    ):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.retries < 0 or args.wait_idle < 0:
        parser.error("--retries and --wait-idle must not be negative")
    if args.fill < 1000:
        parser.error("--fill must be at least 1000")
    if args.clients < args.loaders:
        parser.error("--clients must be at least --loaders")
    return args


def machine() -> str:
    """CPU, cores, kernel, Python, SQLite and uvloop versions."""
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        loop = f"uvloop {importlib.metadata.version('uvloop')}"
    except importlib.metadata.PackageNotFoundError:
        loop = "asyncio loop"
    return (
        f"{os.cpu_count()} x {cpu}, Linux {platform.release()}, Python {platform.python_version()}"
        f", SQLite {sqlite3.sqlite_version}, {loop}"
    )


def _watchdog(signum: int, frame: FrameType | None) -> None:
    print(f"bench: timed out (signal {signum}); ending its processes", file=sys.stderr, flush=True)
    end_children()
    os._exit(124)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def measure(name: str, args: argparse.Namespace, tmp: Path, run: int) -> Report:
    """One run of a measurement; while it is contended and retries are left, measure again.

    When every attempt was contended, the least contended one is kept.
    """
    attempts: list[Report] = []
    for attempt in range(1 + args.retries):
        part = Report()
        workdir = tmp / f"{name}-{run}-{attempt}"
        workdir.mkdir()
        try:
            wait_idle(args.wait_idle)
            PHASES[name](args, part, workdir)
        finally:
            end_children()
            shutil.rmtree(workdir, ignore_errors=True)  # run 4's copy of its database is big
        attempts.append(part)
        if not part.contended:
            break
        if attempt < args.retries:
            print(f"    {name} was contended: measuring again", flush=True)
    return min(attempts, key=lambda r: r.other_cores)


def run_phase(name: str, args: argparse.Namespace, report: Report, tmp: Path) -> bool:
    """Run a measurement `--repeat` times and keep the median run; False if it failed."""
    runs: list[Report] = []
    try:
        for run in range(args.repeat):
            if args.repeat > 1:
                print(f"    ({name}: run {run + 1} of {args.repeat})", flush=True)
            runs.append(measure(name, args, tmp, run))
    except Exception as exc:
        print(f"    {name} FAILED: {exc}", file=sys.stderr, flush=True)
        report.notes.append(f"{name} failed: {type(exc).__name__}: {exc}")
        report.rows.append(
            Row("!", f"{name}: failed (see the notes)", type(exc).__name__, "", False, "ERROR")
        )
        return False
    runs.sort(key=lambda r: r.score)
    median = runs[(len(runs) - 1) // 2]
    if len(runs) > 1:
        scores = ", ".join(f"{r.score:,.0f}" if r.score >= 100 else f"{r.score:.2f}" for r in runs)
        row = Row("", f"  {name}: {len(runs)} runs ({median.unit}), median shown", scores)
        position = {"latency": 2, "reads": len(median.rows) - 1}.get(name, 1)
        median.rows.insert(position, row)
        median.data[f"{name}_runs"] = [r.score for r in runs]
    report.merge(median)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected measurements and print the table."""
    args = parse_args(argv)
    signal.signal(signal.SIGALRM, _watchdog)
    signal.signal(signal.SIGTERM, _terminate)
    signal.alarm(math.ceil(args.timeout))
    selected = args.only or list(PHASES)
    report = Report()
    header = [
        f"jobd benchmark{' (--quick)' if args.quick else ''}: {machine()}",
        f"durability full (default); no-op EMAIL_WAKE_UP jobs; pool max_workers="
        f"{args.max_workers} concurrency={args.concurrency} (run 0: 1); runs 0-1: "
        f"{args.clients} clients in {args.loaders} process(es)",
    ]
    print(header[0], flush=True)
    failed = False
    fsyncs: list[float] = []
    try:
        with tempfile.TemporaryDirectory(prefix="jobd-bench-") as tmp:
            fsyncs.append(fsync_rate(Path(tmp)))
            print(f"    fsync rate of {tmp}: {fsyncs[0]:,.0f}/s", flush=True)
            for name in PHASES:
                if name in selected:
                    failed |= not run_phase(name, args, report, Path(tmp))
            fsyncs.append(fsync_rate(Path(tmp)))
    finally:
        signal.alarm(0)
        end_children()
    rates = " / ".join(f"{rate:,.0f}" for rate in fsyncs)
    header.append(
        f"fsyncs per second of a 4 KB append in the temp folder, before / after: {rates}"
        " (one commit costs one)"
    )
    report.data["fsync_per_s"] = fsyncs
    print_table(report, header)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"machine": machine(), **report.data}, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
