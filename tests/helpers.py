"""Helpers shared by the test suites."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp.test_utils import TestServer

from provena_jobd.config import Settings, from_dict
from provena_jobd.http.limits import PARSER_LIMITS
from provena_jobd.models import Job, JobStatus
from provena_jobd.queue.store import JobStore

T = TypeVar("T")

# The eleven fields of the reference's JobStatusTable, all present in every job jobd returns.
REFERENCE_JOB_FIELDS = frozenset(
    {
        "session_id",
        "created_timestamp",
        "username",
        "batch_id",
        "payload",
        "job_type",
        "job_sub_type",
        "gsi_status",
        "status",
        "info",
        "result",
    }
)


def settings_for(tmp_path: Path, **sections: dict[str, Any]) -> Settings:
    """Settings with a database in `tmp_path` and the given sections merged in."""
    raw: dict[str, Any] = {"storage": {"db": str(tmp_path / "jobd.db")}}
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return from_dict(raw)


async def eventually(
    check: Callable[[], Awaitable[T | None]], within_s: float = 5.0, what: str = "condition"
) -> T:
    """Poll `check` (briefly, on the real clock: it waits for the writer thread) until truthy."""
    deadline = time.monotonic() + within_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


async def job_in(store: JobStore, session_id: str, *statuses: JobStatus) -> Job:
    """Wait until a job is in one of `statuses`; return it."""

    async def check() -> Job | None:
        job = await store.get(session_id)
        return job if job is not None and job.status in statuses else None

    return await eventually(check, what=f"{session_id} to be {'/'.join(statuses)}")


async def settle() -> None:
    """Let every ready task on the loop run (no time passes on any clock)."""
    for _ in range(20):
        await asyncio.sleep(0)


def process_alive(pid: int) -> bool:
    """True while a process with this pid exists (not yet reaped by its parent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class ServedAsJobd(TestServer):
    """aiohttp's TestServer with the HTTP parser limits `jobd serve` runs with."""

    async def start_server(
        self, loop: asyncio.AbstractEventLoop | None = None, **kwargs: Any
    ) -> None:
        """Start as aiohttp's does, with jobd's parser limits unless `kwargs` say otherwise."""
        # Limits given to TestServer() itself are dropped, and TestClient starts its server
        # with no arguments: this is where they reach the AppRunner.
        await super().start_server(loop, **{**PARSER_LIMITS, **kwargs})
