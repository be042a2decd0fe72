"""A blocking keep-alive HTTP/1.1 client (control requests and sequential latency)."""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

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
