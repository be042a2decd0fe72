"""Helpers for the acceptance tests: launch, fetch, list and poll jobd; read its database file."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

T = TypeVar("T")
Json = dict[str, Any]

POLL_S = 0.02
TERMINAL = frozenset({"SUCCEEDED", "FAILED"})
STATUS_ORDER = ("PENDING", "DEQUEUED", "IN_PROGRESS", "SUCCEEDED")
JOB_TYPE_OF = {
    "PROV_LODGE_WAKE_UP": "PROV_LODGE",
    "REGISTRY_WAKE_UP": "REGISTRY",
    "EMAIL_WAKE_UP": "EMAIL",
}


def launch_body(sub_type: str = "EMAIL_WAKE_UP", **extra: Any) -> Json:
    """A launch request for a wake-up job (these succeed with `{}` in the default config)."""
    body: Json = {
        "job_type": JOB_TYPE_OF[sub_type],
        "job_sub_type": sub_type,
        "job_payload": {"reason": "acceptance"},
    }
    body.update(extra)
    return body


async def launch(session: aiohttp.ClientSession, url: str, body: Json | None = None) -> str:
    """Launch one job and return its session id; anything but 200 fails the test."""
    async with session.post(f"{url}/jobs/admin/launch", json=body or launch_body()) as response:
        text = await response.text()
        assert response.status == 200, f"launch got {response.status}: {text}"
        answer: Json = await response.json()
    session_id = answer["session_id"]
    assert isinstance(session_id, str)
    return session_id


async def fetch(
    session: aiohttp.ClientSession, url: str, session_id: str, route: str = "admin"
) -> tuple[int, Json]:
    """`GET /jobs/<route>/fetch`: the status code and the decoded body."""
    async with session.get(
        f"{url}/jobs/{route}/fetch", params={"session_id": session_id}
    ) as response:
        body: Json = await response.json()
        return response.status, body


async def fetch_job(
    session: aiohttp.ClientSession, url: str, session_id: str, route: str = "admin"
) -> Json:
    """One job, which must exist."""
    status, body = await fetch(session, url, session_id, route)
    assert status == 200, f"fetch {session_id} got {status}: {body}"
    job: Json = body["job"]
    return job


async def fetch_jobs(
    session: aiohttp.ClientSession, url: str, session_ids: Iterable[str], parallel: int = 32
) -> dict[str, Json]:
    """Many jobs by id, fetched one request each with bounded parallelism."""
    gate = asyncio.Semaphore(parallel)

    async def one(session_id: str) -> tuple[str, Json]:
        async with gate:
            return session_id, await fetch_job(session, url, session_id)

    pairs = await asyncio.gather(*(one(s) for s in session_ids))
    return dict(pairs)


async def list_all_jobs(session: aiohttp.ClientSession, url: str, limit: int = 1000) -> list[Json]:
    """Every job of every user, walking `POST /jobs/admin/list` to its last page."""
    jobs: list[Json] = []
    body: Json = {"limit": limit}
    for _ in range(10_000):
        async with session.post(f"{url}/jobs/admin/list", json=body) as response:
            page: Json = await response.json()
            assert response.status == 200, f"admin list got {response.status}: {page}"
        jobs.extend(page["jobs"])
        if page["pagination_key"] is None:
            return jobs
        body = {"limit": limit, "pagination_key": page["pagination_key"]}
    raise AssertionError("admin list never reached its last page")


async def poll(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    timeout_s: float,
    what: str,
    interval_s: float = POLL_S,
) -> T:
    """Call `probe` every `interval_s` until `done(value)`, failing after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if done(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}; last: {value}")
        await asyncio.sleep(interval_s)


async def wait_all_terminal(
    session: aiohttp.ClientSession, url: str, session_ids: Iterable[str], timeout_s: float
) -> dict[str, Json]:
    """Poll the admin list until every given job is SUCCEEDED or FAILED; return them by id."""
    wanted = set(session_ids)

    async def by_id() -> dict[str, Json]:
        return {job["session_id"]: job for job in await list_all_jobs(session, url)}

    def finished(jobs: dict[str, Json]) -> bool:
        return all(s in jobs and jobs[s]["status"] in TERMINAL for s in wanted)

    jobs = await poll(by_id, finished, timeout_s, f"{len(wanted)} jobs to finish", 0.05)
    return {s: jobs[s] for s in wanted}


def outcome(job: Json) -> tuple[Any, ...]:
    """What must never change once a job has finished."""
    return (
        job["status"],
        job["result"],
        job["info"],
        job.get("finished_timestamp"),
        job.get("attempt"),
    )


def in_flight_rows(db: Path) -> dict[str, str] | None:
    """Jobs DEQUEUED or IN_PROGRESS in jobd's database file, or None if it is busy.

    Read only while the server is stopped (SIGSTOP), so the answer is its state at a kill.
    """
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.2)
        ) as connection:
            rows = connection.execute(
                "SELECT session_id, status FROM jobs WHERE status IN ('DEQUEUED', 'IN_PROGRESS')"
            ).fetchall()
    except sqlite3.OperationalError:
        return None
    return {str(session_id): str(status) for session_id, status in rows}


def statuses_in_db(db: Path) -> dict[str, str]:
    """Every job's status in jobd's database file (read while the server is stopped)."""
    with contextlib.closing(
        sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)
    ) as connection:
        rows = connection.execute("SELECT session_id, status FROM jobs").fetchall()
    return {str(session_id): str(status) for session_id, status in rows}


@dataclass
class Burst:
    """What the clients of a burst saw: acknowledged launches and every other answer."""

    acknowledged: list[str] = field(default_factory=list)
    other_answers: list[str] = field(default_factory=list)  # non-200 statuses, any time
    errors_before_strike: list[str] = field(default_factory=list)
    errors_after_strike: int = 0
    struck: bool = False


async def burst_until_struck(
    url: str, strike: Callable[[], None], after_acks: int, senders: int = 64
) -> Burst:
    """Launch from `senders` clients at once; call `strike` (a signal) after `after_acks` 200s.

    Each client keeps launching until a request fails after the strike, so launches are in
    flight when it lands. A launch counts as acknowledged only if its 200 body was read.
    """
    burst = Burst()

    async def sender(session: aiohttp.ClientSession) -> None:
        while True:
            try:
                async with session.post(f"{url}/jobs/admin/launch", json=launch_body()) as response:
                    body = await response.json(content_type=None)
                    status = response.status
            except (TimeoutError, aiohttp.ClientError) as exc:
                if burst.struck:
                    burst.errors_after_strike += 1
                else:
                    burst.errors_before_strike.append(repr(exc))
                return
            if status != 200:
                burst.other_answers.append(f"{status}: {body}")
                continue
            burst.acknowledged.append(body["session_id"])
            if len(burst.acknowledged) >= after_acks and not burst.struck:
                burst.struck = True
                strike()

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(sender(session) for _ in range(senders)))
    return burst


async def launch_many(session: aiohttp.ClientSession, url: str, count: int) -> list[str]:
    """Launch `count` wake-up jobs, 32 at a time; their session ids in launch order."""
    gate = asyncio.Semaphore(32)

    async def one() -> str:
        async with gate:
            return await launch(session, url)

    return list(await asyncio.gather(*(one() for _ in range(count))))
