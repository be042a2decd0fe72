"""jobd's benchmark: launch throughput, in-process throughput, latency, read latency, memory.

Run `make bench` (or `.venv/bin/python bench/run.py --help`). Every server it measures runs
in a fresh temporary folder on 127.0.0.1 with a port the OS picks, at the default durability
(`full`: every commit is fsynced), and runs no-op `EMAIL_WAKE_UP` jobs. What each number means
is in docs/benchmarks.md.

The load generator of the HTTP runs is a hand-written HTTP/1.1 keep-alive client on asyncio
Protocols (uvloop when installed), in its own process, so that it costs the server as little
CPU as possible on a small machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import hashlib
import importlib.metadata
import json
import math
import multiprocessing
import multiprocessing.process
import multiprocessing.queues
import os
import platform
import queue
import random
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar, cast
from urllib.parse import quote, urlsplit

T = TypeVar("T")

HOST = "127.0.0.1"
LAUNCH_PATH = "/jobs/admin/launch"
LAUNCH_BODY = b'{"job_type":"EMAIL","job_sub_type":"EMAIL_WAKE_UP","job_payload":{}}'
FILL_VERSION = 1  # bump when the pre-filled database's contents change
FILL_BASE_TS = 1_700_000_000  # created_timestamp of the first pre-filled job
FILL_JOBS_PER_SECOND = 10
FILL_BATCH_SIZE = 50  # every tenth block of this many jobs is one user's batch
FILL_JOBS_PER_USER = 1000  # 1,000 users for a million jobs; plus "local", the caller of the
FILL_MAX_USERS = 1000  # /jobs/user routes in auth mode none
LOCAL_USER = "local"

# Children this process started; the watchdog and the exit path end them, and nothing else.
_CHILDREN: list[subprocess.Popen[bytes]] = []
_LOADERS: list[multiprocessing.process.BaseProcess] = []


# -- results ---------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results table."""

    number: str
    label: str
    value: str
    target: str = ""
    ok: bool | None = None
    verdict: str = ""


@dataclass
class Report:
    """Everything measured, printed as one table at the end."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    contended: bool = False
    other_cores: float = 0.0  # the most CPU other processes used during one of its parts
    score: float = math.nan  # the headline figure, to pick the median of repeated runs
    unit: str = ""

    def merge(self, other: Report) -> None:
        """Take in the rows, notes and figures of one measurement."""
        self.rows += other.rows
        self.notes += other.notes
        self.data.update(other.data)

    def add(self, row: Row) -> None:
        """Record a row and show it at once, so a long run shows progress."""
        self.rows.append(row)
        mark = f"  [{row.verdict}]" if row.verdict else ""
        target = f"  (target {row.target})" if row.target else ""
        print(f"    {row.label}: {row.value}{target}{mark}", flush=True)


def at_least(value: float, target: float) -> tuple[bool, str]:
    """Verdict for a higher-is-better figure."""
    if value >= target:
        return True, "ok"
    return False, f"MISS: {100 * (1 - value / target):.0f}% short"


def at_most(value: float, target: float) -> tuple[bool, str]:
    """Verdict for a lower-is-better figure."""
    if value <= target:
        return True, "ok"
    return False, f"MISS: {value / target:.1f}x the target"


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of unsorted values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def print_table(report: Report, header: list[str]) -> None:
    """Print the results as an aligned table."""
    titles = ("#", "measurement", "result", "target", "verdict")
    cells = [(r.number, r.label, r.value, r.target, r.verdict) for r in report.rows]
    widths = [max(len(t), *(len(c[i]) for c in cells)) for i, t in enumerate(titles)]
    line = "  ".join("-" * w for w in widths)
    print()
    print("=" * len(line))
    for text in header:
        print(text)
    print("=" * len(line))
    print("  ".join(t.ljust(w) for t, w in zip(titles, widths, strict=True)).rstrip())
    print(line)
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())
    print(line)
    for note in report.notes:
        print(f"note: {note}")
    print(flush=True)


# -- processes -------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the benchmark dies (Linux only)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def end_children() -> None:
    """Kill every child this benchmark started that is still running."""
    for proc in _CHILDREN:
        if proc.poll() is None:
            proc.kill()
            with contextlib.suppress(Exception):
                proc.wait(timeout=5)
    for loader in _LOADERS:
        if loader.is_alive():
            loader.kill()
            loader.join(timeout=5)


def jobd_command() -> list[str]:
    """How to run `jobd`: the venv's script next to this Python, else the one on PATH."""
    beside = Path(sys.executable).parent / "jobd"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("jobd")
    if found:
        return [found]
    return [sys.executable, "-c", "from provena_jobd.cli import main; main()"]


def write_config(path: Path, max_workers: int, concurrency: int) -> None:
    """A jobd.toml that sets only the pool (everything else, durability included, default)."""
    path.write_text(f"[pool]\nmax_workers = {max_workers}\nconcurrency = {concurrency}\n")


class JobdProcess:
    """A real `jobd serve` subprocess on 127.0.0.1, port 0."""

    def __init__(self, workdir: Path, db: Path, config: Path) -> None:
        self.workdir = workdir
        self.db = db
        self.config = config
        self.log = workdir / "jobd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.host = HOST
        self.port = 0

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout_s: float = 60.0) -> None:
        """Start it and wait for the URL it prints as the first line of stdout."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBD_")}
        command = [
            *jobd_command(),
            "serve",
            "--host",
            HOST,
            "--port",
            "0",
            "--db",
            str(self.db),
            "--config",
            str(self.config),
        ]
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.workdir,
                preexec_fn=_die_with_parent,
            )
        _CHILDREN.append(self.proc)
        url = self._first_line(timeout_s)
        parts = urlsplit(url)
        if parts.hostname != HOST or parts.port is None:
            raise RuntimeError(f"jobd printed an unexpected URL: {url!r}")
        self.port = parts.port

    def _first_line(self, timeout_s: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        buffer = b""
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.proc.poll() is not None:
                raise RuntimeError(f"jobd did not start; its log:\n{self.log_tail()}")
            readable, _, _ = select.select([fd], [], [], min(remaining, 0.2))
            if readable:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise RuntimeError(f"jobd closed stdout; its log:\n{self.log_tail()}")
                buffer += chunk
        return buffer.split(b"\n", 1)[0].decode().strip()

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's stderr."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM, wait for a graceful exit, SIGKILL if it does not come."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> JobdProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


CONTENDED_CORES = 0.15  # other processes using more than this during a run spoil it


def machine_busy_s() -> float:
    """CPU seconds all processors have spent busy since boot (stolen time counts as busy)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields)
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def speed_probe_ms() -> float:
    """Time a fixed pure-Python loop: on a steady machine it always takes the same time."""
    start = time.perf_counter()
    total = 0
    for i in range(2_000_000):
        total += i
    return (time.perf_counter() - start) * 1e3


class CpuWatch:
    """How much CPU processes other than the benchmark's own use while it measures.

    It also times a fixed loop when it starts and when it is read: a virtual machine whose
    host is busy runs everything slower without showing any other process.
    """

    def __init__(self, pids: Sequence[int] = ()) -> None:
        self.probes = [speed_probe_ms()]
        self.pids = [os.getpid(), *pids]
        self.start = time.monotonic()
        self.machine = machine_busy_s()
        self.own = self._own()

    def _own(self) -> float:
        # This process and the live children named; reaped children (the load generators).
        times = os.times()
        total = times.children_user + times.children_system
        for pid in self.pids:
            with contextlib.suppress(OSError):
                total += proc_cpu_s(pid)
        return total

    def other_cores(self) -> float:
        """Cores used by everything else on the machine since the watch started."""
        elapsed = max(time.monotonic() - self.start, 1e-6)
        other = (machine_busy_s() - self.machine) - (self._own() - self.own)
        self.probes.append(speed_probe_ms())
        return max(0.0, other / elapsed)


def report_contention(report: Report, number: str, other: float, watch: CpuWatch) -> None:
    """Show what else ran during a measurement; warn when it was enough to spoil it."""
    report.add(
        Row(
            number,
            "  CPU speed probe before / after (fixed loop; lower is faster)",
            " / ".join(f"{ms:.0f} ms" for ms in watch.probes),
        )
    )
    report.data.setdefault("speed_probe_ms", []).extend(watch.probes)
    contended = other > CONTENDED_CORES
    report.contended = report.contended or contended
    report.other_cores = max(report.other_cores, other)
    report.add(
        Row(
            number,
            "  other processes' CPU meanwhile",
            f"{other:.2f} of {os.cpu_count()} cores",
            verdict="CONTENDED" if contended else "",
        )
    )
    if contended:
        report.notes.append(
            f"{number}: other processes used {other:.2f} cores while it ran, so its figures "
            "understate jobd; rerun on an idle machine (--wait-idle, --retries)."
        )


def wait_idle(max_wait_s: float) -> None:
    """Wait (at most max_wait_s) until the machine has been idle for two seconds."""
    if max_wait_s <= 0:
        return
    start = time.monotonic()
    said = -math.inf
    while True:
        before = machine_busy_s()
        time.sleep(2.0)
        busy = (machine_busy_s() - before) / 2.0
        waited = time.monotonic() - start
        if busy <= CONTENDED_CORES:
            if waited > 3:
                print(f"    the machine is idle after {waited:.0f} s", flush=True)
            return
        if waited > max_wait_s:
            print(f"    machine still busy ({busy:.2f} cores); measuring anyway", flush=True)
            return
        if waited - said >= 30:
            said = waited
            print(f"    waiting for an idle machine ({busy:.2f} cores busy)...", flush=True)


def proc_status_kb(pid: int, key: str) -> int:
    """A `kB` field of /proc/<pid>/status (VmHWM, VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _stat_cpu_s(path: Path) -> float:
    fields = path.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    """User plus system CPU seconds of a process (all its threads)."""
    return _stat_cpu_s(Path(f"/proc/{pid}/stat"))


def thread_cpu_s(pid: int) -> tuple[float, float]:
    """CPU seconds of a process's main thread (its event loop) and of all its other threads."""
    main = others = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread may end while we look
            cpu = _stat_cpu_s(task / "stat")
            if task.name == str(pid):
                main += cpu
            else:
                others += cpu
    return main, others


# -- a blocking keep-alive HTTP/1.1 client (control requests and sequential latency) ----------


def _content_length(head: bytes | bytearray) -> int:
    lower = bytes(head).lower()
    at = lower.find(b"\r\ncontent-length:")
    if at < 0:
        raise RuntimeError("response without Content-Length")
    end = lower.find(b"\r\n", at + 2)
    return int(lower[at + 17 : end if end >= 0 else None])


class HttpConn:
    """One keep-alive connection; one request at a time."""

    def __init__(self, host: str, port: int, timeout_s: float = 30.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.host = f"{host}:{port}".encode()
        self.buffer = bytearray()

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def __enter__(self) -> HttpConn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """Send one request and read its whole response: (status, body)."""
        self.sock.sendall(build_request(method, path, self.host, body))
        return self.read_response()

    def read_response(self) -> tuple[int, bytes]:
        """Read one response off the connection."""
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            self._recv()
        head = self.buffer[:end]
        total = end + 4 + _content_length(head)
        while len(self.buffer) < total:
            self._recv()
        status = int(head[9:12])
        body = bytes(self.buffer[end + 4 : total])
        del self.buffer[:total]
        return status, body

    def _recv(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def json(self, method: str, path: str, body: Any = None) -> Any:
        """A request whose 200 response is JSON."""
        raw = None if body is None else json.dumps(body).encode()
        status, data = self.request(method, path, raw)
        if status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {status}: {data[:300]!r}")
        return json.loads(data)


def build_request(method: str, path: str, host: bytes, body: bytes | None) -> bytes:
    """The bytes of one HTTP/1.1 request."""
    head = b"%s %s HTTP/1.1\r\nHost: %s\r\n" % (method.encode(), path.encode(), host)
    if body is None:
        return head + b"\r\n"
    return head + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )


def email_jobs_finished(conn: HttpConn) -> int:
    """The EMAIL pool's finished-jobs counter, from GET /admin/pool."""
    for pool in conn.json("GET", "/admin/pool")["pools"]:
        if pool["job_type"] == "EMAIL":
            return int(pool["jobs_finished"])
    raise RuntimeError("no EMAIL pool in /admin/pool")


def wait_finished(conn: HttpConn, expected: int, timeout_s: float, interval_s: float) -> float:
    """Poll until the EMAIL pool has finished `expected` jobs; when that was seen."""
    deadline = time.monotonic() + timeout_s
    while (finished := email_jobs_finished(conn)) < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {finished} of {expected} jobs finished in {timeout_s:g} s")
        time.sleep(interval_s)
    return time.time()


def status_counts(db: Path) -> dict[str, int]:
    """Jobs per status, read from the database file itself."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        rows = connection.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall()
    return {str(status): int(count) for status, count in rows}


def check_all_succeeded(db: Path, expected: int) -> None:
    """Fail loudly unless exactly `expected` jobs are stored and every one SUCCEEDED."""
    counts = status_counts(db)
    if counts.get("SUCCEEDED", 0) != expected or sum(counts.values()) != expected:
        raise RuntimeError(f"expected {expected} SUCCEEDED jobs, found {counts}")


# -- the load generator (runs in its own process) --------------------------------------------


def run_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop when it is installed, else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


class _Work:
    """Requests left to send, shared by the connections of one load generator."""

    def __init__(self, total: int) -> None:
        self.left = total
        self.ok = 0
        self.errors = 0
        self.first_error = ""
        self.latencies: list[float] = []


class _LaunchClient(asyncio.Protocol):
    """One keep-alive connection that sends the next request as soon as a response ends."""

    def __init__(self, request: bytes, work: _Work, done: asyncio.Future[None]) -> None:
        self.request = request
        self.work = work
        self.done = done
        self.buffer = bytearray()
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send_next(self) -> None:
        """Send another request, or finish when there is none left."""
        if self.work.left <= 0:
            if not self.done.done():
                self.done.set_result(None)
            return
        self.work.left -= 1
        self.sent_at = time.perf_counter()
        assert self.transport is not None
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            total = end + 4 + _content_length(self.buffer[:end])
            if len(self.buffer) < total:
                return
            work = self.work
            work.latencies.append(time.perf_counter() - self.sent_at)
            if self.buffer[9:12] == b"200":
                work.ok += 1
            else:
                work.errors += 1
                if not work.first_error:
                    work.first_error = bytes(self.buffer[:total]).decode(errors="replace")
            del self.buffer[:total]
            self.send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"connection lost: {exc}"))


async def _load(host: str, port: int, total: int, clients: int, timeout_s: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    request = build_request("POST", LAUNCH_PATH, f"{host}:{port}".encode(), LAUNCH_BODY)
    work = _Work(total)
    protocols: list[_LaunchClient] = []
    for _ in range(clients):
        _, protocol = await loop.create_connection(
            lambda: _LaunchClient(request, work, loop.create_future()), host, port
        )
        protocols.append(protocol)
    cpu0 = time.process_time()
    first = time.time()
    for protocol in protocols:
        protocol.send_next()
    await asyncio.wait_for(asyncio.gather(*(p.done for p in protocols)), timeout_s)
    last = time.time()
    cpu = time.process_time() - cpu0
    for protocol in protocols:
        if protocol.transport is not None:
            protocol.transport.close()
    return {
        "first": first,
        "last": last,
        "ok": work.ok,
        "errors": work.errors,
        "first_error": work.first_error,
        "latencies": work.latencies,
        "cpu_s": cpu,
    }


def loader_main(
    host: str,
    port: int,
    total: int,
    clients: int,
    timeout_s: float,
    out: multiprocessing.queues.Queue[dict[str, Any]],
) -> None:
    """Entry point of a load-generator process: send `total` launches, report the timings."""
    try:
        out.put(run_loop(_load(host, port, total, clients, timeout_s)))
    except BaseException as exc:
        out.put({"error": repr(exc)})


def run_loaders(
    host: str, port: int, total: int, clients: int, processes: int, timeout_s: float
) -> dict[str, Any]:
    """Run the load over `processes` generator processes; their combined timings."""
    context = multiprocessing.get_context("spawn")
    out: multiprocessing.queues.Queue[dict[str, Any]] = context.Queue()
    started: list[multiprocessing.process.BaseProcess] = []
    for index in range(processes):
        share = total // processes + (1 if index < total % processes else 0)
        conns = clients // processes + (1 if index < clients % processes else 0)
        loader = context.Process(
            target=loader_main,
            args=(host, port, share, conns, timeout_s, out),
            name=f"jobd-bench-loader-{index}",
            daemon=True,
        )
        loader.start()
        _LOADERS.append(loader)
        started.append(loader)
    results: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s + 30
    while len(results) < processes:
        try:
            results.append(out.get(timeout=0.5))
        except queue.Empty:
            if time.monotonic() > deadline:
                raise TimeoutError("the load generator did not finish in time") from None
            if all(not p.is_alive() for p in started) and out.empty():
                raise RuntimeError("a load generator died without reporting") from None
    for process in started:
        process.join(timeout=10)
    failed = [r["error"] for r in results if "error" in r]
    if failed:
        raise RuntimeError(f"load generator failed: {failed[0]}")
    return {
        "first": min(r["first"] for r in results),
        "last": max(r["last"] for r in results),
        "ok": sum(r["ok"] for r in results),
        "errors": sum(r["errors"] for r in results),
        "first_error": next((r["first_error"] for r in results if r["first_error"]), ""),
        "latencies": [x for r in results for x in r["latencies"]],
        "cpu_s": sum(r["cpu_s"] for r in results),
    }


# -- 1 and 5: HTTP launch throughput, and the server's peak RSS ------------------------------


def bench_launch(args: argparse.Namespace, report: Report, workdir: Path) -> None:
    """N launches from concurrent keep-alive clients until every job has SUCCEEDED."""
    n = args.jobs
    print(f"[1] HTTP launch throughput: {n:,} jobs, {args.clients} clients", flush=True)
    db = workdir / "launch.db"
    config = workdir / "jobd.toml"
    write_config(config, args.max_workers, args.concurrency)
    warmup = args.warmup
    server = JobdProcess(workdir, db, config)
    with server:
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
    ok, verdict = at_least(rate, args.target_http)
    report.add(
        Row(
            "1",
            f"HTTP launch -> all SUCCEEDED ({n:,} jobs, {args.clients} clients)",
            f"{rate:,.0f} jobs/s",
            f">= {args.target_http:,.0f} jobs/s",
            ok,
            verdict,
        )
    )
    report.add(Row("1a", "  launches acknowledged (HTTP 200, durable)", f"{ack_rate:,.0f} req/s"))
    report.add(
        Row(
            "1b",
            "  launch round trip under that load, p50 / p99",
            f"{percentile(lat, 50) * 1e3:.1f} / {percentile(lat, 99) * 1e3:.1f} ms",
        )
    )
    report.add(
        Row(
            "1c",
            "  CPU used: server / load generator",
            f"{cpu / elapsed:.2f} / {load['cpu_s'] / elapsed:.2f} cores",
        )
    )
    report.add(
        Row(
            "1d",
            "  server CPU: event-loop thread / SQLite threads",
            f"{(loop1 - loop0) / elapsed:.2f} / {(threads1 - threads0) / elapsed:.2f} cores",
        )
    )
    report_contention(report, "1e", other, watch)
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
    report.data["launch"] = {
        "jobs": n,
        "elapsed_s": elapsed,
        "jobs_per_s": rate,
        "ack_per_s": ack_rate,
        "server_cpu_cores": cpu / elapsed,
        "server_loop_thread_cores": (loop1 - loop0) / elapsed,
        "server_other_threads_cores": (threads1 - threads0) / elapsed,
        "loader_cpu_cores": load["cpu_s"] / elapsed,
        "peak_rss_mb": hwm / 1024,
        "other_processes_cores": other,
    }


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
    ok, verdict = at_least(rate, args.target_inproc)
    report.add(
        Row(
            "2",
            f"in-process launch -> all SUCCEEDED ({n:,} jobs)",
            f"{rate:,.0f} jobs/s",
            f">= {args.target_inproc:,.0f} jobs/s",
            ok,
            verdict,
        )
    )
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
    }


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
    with JobdProcess(workdir, db, config) as server, HttpConn(HOST, server.port) as conn:
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
    from provena_jobd.queue.sql import migrations

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
    with JobdProcess(workdir, db, config) as server, HttpConn(HOST, server.port) as conn:
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


# -- main ------------------------------------------------------------------------------------

PHASES: dict[str, Callable[[argparse.Namespace, Report, Path], None]] = {
    "launch": bench_launch,
    "inproc": bench_inproc,
    "latency": bench_latency,
    "reads": bench_reads,
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Benchmark jobd: throughput, latency, read latency at 1M jobs, memory.",
    )
    parser.add_argument("--jobs", type=int, help="jobs launched over HTTP in run 1 [50000]")
    parser.add_argument(
        "--inproc-jobs", type=int, help="jobs launched in-process in run 2 [100000]"
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
    targets.add_argument("--target-http", type=float, default=5000.0)
    targets.add_argument("--target-inproc", type=float, default=20000.0)
    targets.add_argument("--target-p50-ms", type=float, default=2.0)
    targets.add_argument("--target-p99-ms", type=float, default=10.0)
    targets.add_argument("--target-read-p99-ms", type=float, default=5.0)
    targets.add_argument("--target-rss-mb", type=float, default=100.0)
    args = parser.parse_args(argv)
    quick = args.quick
    defaults: dict[str, tuple[int | float, int | float]] = {
        "jobs": (50_000, 2_000),
        "inproc_jobs": (100_000, 5_000),
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
        f"{args.max_workers} concurrency={args.concurrency}; run 1: {args.clients} clients in "
        f"{args.loaders} process(es)",
    ]
    print(header[0], flush=True)
    failed = False
    try:
        with tempfile.TemporaryDirectory(prefix="jobd-bench-") as tmp:
            for name in PHASES:
                if name in selected:
                    failed |= not run_phase(name, args, report, Path(tmp))
    finally:
        signal.alarm(0)
        end_children()
    print_table(report, header)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"machine": machine(), **report.data}, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
