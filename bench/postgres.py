"""PostgreSQL rows of the benchmark: `python -m bench.postgres` (a few minutes).

Each figure is measured in the same run as its peer, on the same PostgreSQL server:
  P1  in-process launch -> SUCCEEDED on PostgreSQL, beside P1s, the same on SQLite;
  P2  HTTP launch -> SUCCEEDED with 1, 2 and 3 `jobd serve` nodes on one database;
  P3  procrastinate (the Python PostgreSQL queue people use) draining as many no-op jobs.
Targets (issue 9): P2 with one node at least 10x procrastinate's drain rate, and P1 at least
half of P1s. Every database it makes is dropped at the end. Client, server and nodes share
this machine's cores: the CPU the PostgreSQL server itself uses counts against jobd.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import asyncpg

from tests.process import start as start_jobd

from .loadgen import run_loaders, run_loop
from .report import Report, Row, at_least, print_table
from .server import HOST, die_with_parent, write_config
from .throughput import _inproc

SERVER = "postgresql://postgres@127.0.0.1:5432"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.postgres", description=__doc__)
    parser.add_argument("--server", default=SERVER, help="PostgreSQL, without a database name")
    parser.add_argument("--jobs", type=int, default=5_000, help="jobs per HTTP run")
    parser.add_argument("--inproc-jobs", type=int, default=5_000)
    parser.add_argument("--peer-jobs", type=int, default=2_000, help="procrastinate's jobs")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--max-workers", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--nodes", type=int, nargs="*", default=[1, 2, 3])
    parser.add_argument("--no-peer", action="store_true", help="skip procrastinate (P3)")
    args = parser.parse_args(argv)
    args.inproc_chunk, args.inproc_lanes = 64, 8  # as bench.run's defaults
    return args


async def _admin(server: str, sql: str) -> None:
    connection = await asyncpg.connect(f"{server}/postgres")
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextlib.contextmanager
def database(server: str) -> Iterator[str]:
    """A fresh database on `server`, dropped afterwards."""
    name = f"jobd_bench_{uuid.uuid4().hex[:10]}"
    run_loop(_admin(server, f"CREATE DATABASE {name}"))
    try:
        yield f"{server}/{name}"
    finally:
        run_loop(_admin(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


async def _finished(url: str) -> tuple[int, int, float]:
    """(jobs, SUCCEEDED jobs, the last finish time) in a jobd database."""
    connection = await asyncpg.connect(url)
    try:
        row = await connection.fetchrow(
            "SELECT count(*), count(*) FILTER (WHERE status = 'SUCCEEDED'),"
            " coalesce(max(finished_timestamp), 0) FROM jobs"
        )
        return int(row[0]), int(row[1]), float(row[2])
    finally:
        await connection.close()


def wait_succeeded(url: str, expected: int, timeout_s: float) -> float:
    """Poll until `expected` jobs SUCCEEDED; the last one's finish time."""
    deadline = time.monotonic() + timeout_s
    while True:
        total, succeeded, last = run_loop(_finished(url))
        if succeeded >= expected:
            if total != expected:
                raise RuntimeError(f"{total} jobs stored, {expected} launched")
            return last
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {succeeded} of {expected} jobs SUCCEEDED")
        time.sleep(0.02)


def bench_inproc(args: argparse.Namespace, report: Report, workdir: Path) -> float:
    """P1: in-process launch -> SUCCEEDED on PostgreSQL, then on SQLite (the peer)."""
    n = args.inproc_jobs
    with database(args.server) as url:
        result = run_loop(_inproc(args, url))  # type: ignore[arg-type]  # a URL, not a path
        _, succeeded, _ = run_loop(_finished(url))
    if succeeded != args.warmup + n:
        raise RuntimeError(f"{succeeded} of {args.warmup + n} SUCCEEDED on PostgreSQL")
    postgres: float = n / (result["done"] - result["start"])
    sqlite_result = run_loop(_inproc(args, workdir / "inproc.db"))
    sqlite = n / (sqlite_result["done"] - sqlite_result["start"])
    ok, verdict = at_least(postgres, sqlite / 2)
    report.add(
        Row("P1s", f"in-process launch -> SUCCEEDED, SQLite ({n:,} jobs)", f"{sqlite:,.0f} jobs/s")
    )
    report.add(
        Row(
            "P1",
            f"in-process launch -> SUCCEEDED, PostgreSQL ({n:,} jobs)",
            f"{postgres:,.0f} jobs/s",
            f">= {sqlite / 2:,.0f} (half of P1s)",
            ok,
            verdict,
        )
    )
    return postgres


def bench_nodes(args: argparse.Namespace, report: Report, workdir: Path, nodes: int) -> float:
    """P2: HTTP launches spread over `nodes` nodes on one database, until all SUCCEEDED."""
    n = args.jobs
    config = workdir / "jobd.toml"
    write_config(config, args.max_workers, args.concurrency)
    with database(args.server) as url, contextlib.ExitStack() as stack:
        servers = []
        for index in range(nodes):
            server = start_jobd(
                ["--host", HOST, "--port", "0", "--db", url, "--config", str(config)],
                workdir,
                stderr_path=workdir / f"node-{nodes}-{index}.log",
                preexec_fn=die_with_parent,
            )
            stack.callback(server.stop)
            servers.append(server)
        timeout = 120 + n / 100
        start = time.time()
        with concurrent.futures.ThreadPoolExecutor(nodes) as threads:
            shares = [n // nodes + (1 if i < n % nodes else 0) for i in range(nodes)]
            loads = list(
                threads.map(
                    lambda s, share: run_loaders(
                        HOST, s.port, share, max(1, args.clients // nodes), 1, timeout
                    ),
                    servers,
                    shares,
                )
            )
        launched = sum(load["ok"] for load in loads)
        errors = sum(load["errors"] for load in loads)
        if errors:
            raise RuntimeError(f"{errors} launches failed")
        last = wait_succeeded(url, launched, timeout)
        first = min(load["first"] for load in loads) if launched else start
    rate: float = launched / (last - first)
    report.add(
        Row(
            f"P2.{nodes}",
            f"HTTP launch -> SUCCEEDED, {nodes} node(s) ({launched:,} jobs)",
            f"{rate:,.0f} jobs/s",
        )
    )
    return rate


def bench_procrastinate(args: argparse.Namespace, report: Report, target_rate: float) -> float:
    """P3: procrastinate draining no-op jobs with 4 concurrent sub-workers (only the drain is
    timed, which favours it: jobd's figures include launching)."""
    from procrastinate import App, PsycopgConnector

    n = args.peer_jobs
    with database(args.server) as url:
        app = App(connector=PsycopgConnector(conninfo=url))

        @app.task(name="no_op")
        async def no_op() -> None:
            return None

        async def drain() -> float:
            async with app.open_async():
                await app.schema_manager.apply_schema_async()
                for start in range(0, n, 500):
                    await no_op.batch_defer_async(*({} for _ in range(min(500, n - start))))
                began = time.perf_counter()
                await app.run_worker_async(concurrency=4, wait=False, install_signal_handlers=False)
                return time.perf_counter() - began

        elapsed: float = asyncio.run(drain())
    rate: float = n / elapsed
    report.add(
        Row("P3", f"procrastinate drains {n:,} no-op jobs (4 sub-workers)", f"{rate:,.0f} jobs/s")
    )
    ok, verdict = at_least(target_rate, 10 * rate)
    report.add(
        Row(
            "P3x",
            "  jobd 1 node (P2.1) vs procrastinate",
            f"{target_rate / rate:.1f}x",
            ">= 10x",
            ok,
            verdict,
        )
    )
    return rate


def main(argv: Sequence[str] | None = None) -> int:
    """Run the PostgreSQL rows; exit 1 if a target is missed."""
    args = parse_args(argv)
    report = Report()
    with tempfile.TemporaryDirectory(prefix="jobd-bench-pg-") as tmp:
        workdir = Path(tmp)
        print("[P1] in-process launch -> SUCCEEDED", flush=True)
        bench_inproc(args, report, workdir)
        rates: dict[int, float] = {}
        for nodes in args.nodes:
            print(f"[P2] HTTP launch -> SUCCEEDED, {nodes} node(s)", flush=True)
            rates[nodes] = bench_nodes(args, report, workdir, nodes)
        if not args.no_peer:
            print("[P3] procrastinate", flush=True)
            bench_procrastinate(args, report, rates.get(1, max(rates.values(), default=0.0)))
    print_table(report, [f"PostgreSQL at {args.server}"])
    return 0 if all(row.ok is not False for row in report.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
