"""`JobdClient.wait` keeps to its own deadline whatever jobd does, and a cancel of its caller
stays a cancel."""

from __future__ import annotations

import asyncio
import time

import msgspec
import pytest

from provena_jobd.client import ConnectionFailed, JobdClient
from provena_jobd.models import Job, JobStatus
from provena_jobd.testing import JobdTestServer


async def test_a_cancel_of_wait_stays_a_cancel_when_jobd_answers_in_the_same_turn(
    jobd_server: JobdTestServer,
) -> None:
    client = jobd_server.client
    launched = await client.launch("EMAIL", "EMAIL_WAKE_UP", {})
    finished = await client.wait(launched.session_id, timeout_s=10)
    running = msgspec.structs.replace(finished, status=JobStatus.IN_PROGRESS)
    polls: list[asyncio.Future[Job]] = []
    polled = asyncio.Event()

    async def fetch(session_id: str, *, admin: bool = False, wait_s: float = 0.0) -> Job:
        polls.append(asyncio.get_running_loop().create_future())
        polled.set()
        return await polls[-1]

    client.fetch = fetch  # type: ignore[method-assign]
    waiting = asyncio.create_task(client.wait(launched.session_id, timeout_s=100))
    await polled.wait()
    polls[0].set_result(running)  # jobd answers "still running" ...
    waiting.cancel()  # ... as the caller gives up, in the same turn of the loop
    for _ in range(20):
        await asyncio.sleep(0)
    assert waiting.cancelled()  # not a second long poll of up to 60 s
    assert len(polls) == 1


async def test_wait_gives_up_in_time_on_a_server_that_never_answers() -> None:
    held: list[asyncio.StreamWriter] = []

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # reads nothing, answers nothing

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    began = time.monotonic()
    try:
        async with JobdClient(f"http://127.0.0.1:{port}") as client:
            with pytest.raises(ConnectionFailed, match="did not answer a fetch of job"):
                await client.wait("01a3185c-5000-4000-8000-000000000000", timeout_s=0.5)
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
    # Its 0.5 s, a long poll's slack and one short fetch: not the 30 s HTTP timeout.
    assert time.monotonic() - began < 10
