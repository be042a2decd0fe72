"""A worker that hangs up while its claim long-polls is not handed a job: its poll stops
claiming, and a job claimed just as it left goes back to the queue at once (PENDING, the
attempt refunded, its place kept) instead of waiting out a lease held by nobody. On SQLite
and on PostgreSQL, over a real listener, on a fake clock (so no lease ever runs out here)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from provena_jobd.client import JobdClient
from provena_jobd.clock import FakeClock
from provena_jobd.http.serve import Running, running
from provena_jobd.metrics import sample
from provena_jobd.models import INFO_DEQUEUED, Job, JobStatus
from provena_jobd.queue.messages import WORKER_LEFT
from provena_jobd.queue.store import FlowClaim, FlowClaimed
from provena_jobd.worker_client import WorkerClient
from tests.helpers import eventually, settings_for
from tests.http.hangup_helpers import no_500, open_raw, requests_counted
from tests.postgres import empty

REGISTRY = "REGISTRY"
WAKE = (REGISTRY, "REGISTRY_WAKE_UP")
CLAIM = "/jobs/worker/claim"
RETURNED = "claim_returned"


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each backend's `[storage] db`: a SQLite file, or an emptied PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "jobd.db")
    url: str = request.getfixturevalue("postgres_database")
    empty(url)
    return url


@pytest.fixture
async def jobd(tmp_path: Path, database: str) -> AsyncIterator[Running]:
    """A jobd whose REGISTRY jobs are run by outside workers, on a clock that stands still."""
    settings = settings_for(
        tmp_path,
        storage={"db": database},
        server={"port": 0},
        pool={REGISTRY: {"external": True}},
    )
    async with running(settings, clock=FakeClock()) as served:
        yield served


@pytest.fixture
async def client(jobd: Running) -> AsyncIterator[JobdClient]:
    async with JobdClient(jobd.url) as opened:
        yield opened


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="provena_jobd")
    return caplog


async def send_claim(
    url: str, worker_id: str, wait_s: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A worker's claim on a raw connection, so the test decides when its client leaves."""
    body = json.dumps({"job_type": REGISTRY, "worker_id": worker_id, "wait_s": wait_s}).encode()
    reader, writer = await open_raw(url)
    writer.write(
        f"POST {CLAIM} HTTP/1.1\r\nHost: jobd\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    return reader, writer


async def leave(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The client closes its side (a FIN); returns once jobd has closed the connection too,
    so jobd knows it is gone. Nothing was answered on it."""
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()


async def claim_answered(url: str) -> str:
    """The exposition once the left claim's handler has ended (it is counted then): under
    499, nginx's "client closed request", as nobody was answered."""
    text = await eventually(lambda: requests_counted(url, CLAIM, "499"), what="the claim ended")
    assert sample(text, "jobd_http_requests_total", {"route": CLAIM, "status": "200"}) == 0
    return text


async def fetch(client: JobdClient, session_id: str) -> Job:
    return await client.fetch(session_id, admin=True)


async def test_a_poll_whose_worker_left_hands_a_new_job_to_nobody(
    jobd: Running, client: JobdClient, logs: pytest.LogCaptureFixture
) -> None:
    reader, writer = await send_claim(jobd.url, "gone", wait_s=30)

    async def polling() -> bool:
        return jobd.server.gateway.worker("gone") is not None

    await eventually(polling, what="the claim polling")
    await leave(reader, writer)

    launched = await client.launch(*WAKE, {})  # wakes the poll, which must not take it
    text = await claim_answered(jobd.url)
    job = await fetch(client, launched.session_id)
    assert (job.status, job.attempt) == (JobStatus.PENDING, 0)
    async with WorkerClient(jobd.url, worker_id="b") as other:
        [work] = await other.claim(REGISTRY)  # at once: no lease of the gone worker to wait out
    assert (work.session_id, work.attempt) == (launched.session_id, 1)
    job = await fetch(client, launched.session_id)
    assert (job.status, job.info) == (JobStatus.DEQUEUED, INFO_DEQUEUED)
    no_500(text, logs)
    assert not [r for r in logs.records if getattr(r, "action", None) == RETURNED]


async def test_a_job_claimed_as_its_worker_leaves_goes_back_at_once_in_its_place(
    jobd: Running,
    client: JobdClient,
    logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = await client.launch(*WAKE, {})
    second = await client.launch(*WAKE, {})
    reader, writer = await send_claim(jobd.url, "gone", wait_s=0)
    store = jobd.server.gateway.store
    claim_flow = store.claim_flow

    async def claim_then_leave(flow: FlowClaim) -> FlowClaimed:
        """The claim commits, and the worker hangs up before jobd answers it."""
        claimed = await claim_flow(flow)
        if claimed.jobs and flow.claim.worker_id == "gone":
            await leave(reader, writer)
        return claimed

    monkeypatch.setattr(store, "claim_flow", claim_then_leave)
    text = await claim_answered(jobd.url)

    job = await fetch(client, first.session_id)
    assert (job.status, job.attempt, job.info) == (JobStatus.PENDING, 0, WORKER_LEFT)
    async with WorkerClient(jobd.url, worker_id="b") as other:
        [work] = await other.claim(REGISTRY)
    # The same attempt number: the gone worker never learnt it, so it can never use it.
    assert (work.session_id, work.attempt) == (first.session_id, 1)  # first in line still
    assert (await fetch(client, second.session_id)).status is JobStatus.PENDING
    no_500(text, logs)
    [line] = [r for r in logs.records if getattr(r, "action", None) == RETURNED]
    assert line.levelno == logging.INFO
    assert line.getMessage() == (
        "worker gone left before its claim was answered; 1 REGISTRY job returned to the "
        f"queue, attempt not counted: {first.session_id}"
    )
