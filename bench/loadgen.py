"""The load generator of the HTTP runs, in its own process(es)."""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.process
import multiprocessing.queues
import queue
import time
from collections.abc import Coroutine
from typing import Any, TypeVar, cast

from bench.httpclient import _content_length, build_request
from bench.server import _LOADERS, LAUNCH_BODY, LAUNCH_PATH

T = TypeVar("T")

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
