"""`jobd cancel ID` says what the cancel did: a running job's cancel is requested (the job ends
FAILED once its handler stops), a waiting one has ended FAILED; run against a real jobd."""

from __future__ import annotations

import pytest

from provena_jobd.models import Job, JobStatus
from provena_jobd.testing import JobdServerFactory, JobdTestServer
from tests.client.handlers import JOB_TYPE, JOBS, STEP, gate
from tests.client.test_cli import jobd
from tests.helpers import eventually

REQUESTED = "cancel requested: the job ends FAILED once its handler stops"


@pytest.fixture
async def server(jobd_server_factory: JobdServerFactory) -> JobdTestServer:
    """A jobd that also runs the tests' STEP jobs (they wait at the gate their payload names)."""
    return await jobd_server_factory(jobs=JOBS)


async def running_at_the_gate(server: JobdTestServer, name: str) -> str:
    """Launch a STEP job that waits at a new gate (never opened); once it runs, its id."""
    gate(name)
    session_id = (await server.client.launch(JOB_TYPE, STEP, {"gate": name})).session_id

    async def at_the_gate() -> Job | None:
        job = await server.client.fetch(session_id)
        return job if job.info == "Waiting at the gate" else None

    await eventually(at_the_gate, within_s=10, what="the job to wait at its gate")
    return session_id


async def test_cancelling_a_running_job_says_the_cancel_was_requested(
    server: JobdTestServer,
) -> None:
    session_id = await running_at_the_gate(server, "cancel-shown")
    ran = await jobd("cancel", session_id, url=server.url)
    assert ran.status == 0, ran
    # Before: `ID  IN_PROGRESS  Waiting at the gate`, the handler's progress, as if nothing
    # had happened.
    assert ran.out == f"{session_id}  IN_PROGRESS  {REQUESTED}\n"
    job = await server.client.wait(session_id, timeout_s=10)
    assert job.status is JobStatus.FAILED
    assert job.info is not None and job.info.startswith("Cancelled by local.")


async def test_cancel_json_keeps_the_job_and_adds_what_the_cancel_did(
    server: JobdTestServer,
) -> None:
    session_id = await running_at_the_gate(server, "cancel-json")
    ran = await jobd("cancel", session_id, "--json", url=server.url)
    assert ran.status == 0, ran
    shown = ran.json()
    job = await server.client.wait(session_id, timeout_s=10)
    assert set(shown) == {*Job.__struct_fields__, "cancel"}
    assert (shown["session_id"], shown["status"], shown["cancel"]) == (
        session_id,
        "IN_PROGRESS",
        "requested",
    )
    assert job.status is JobStatus.FAILED

    waiting = (await server.client.launch("EMAIL", "EMAIL_WAKE_UP", delay_s=3600)).session_id
    ended = (await jobd("cancel", waiting, "--json", url=server.url)).json()
    assert (ended["status"], ended["info"], ended["cancel"]) == (
        "FAILED",
        "Cancelled by local.",
        "ended",
    )


async def test_cancelling_a_waiting_job_says_it_has_ended(server: JobdTestServer) -> None:
    waiting = (await server.client.launch("EMAIL", "EMAIL_WAKE_UP", delay_s=3600)).session_id
    ran = await jobd("cancel", waiting, url=server.url)
    assert ran.status == 0, ran
    assert ran.out == f"{waiting}  FAILED  cancelled: the job has ended FAILED\n"
    assert (await server.client.fetch(waiting)).status is JobStatus.FAILED


async def test_a_cancel_answered_with_a_job_that_had_succeeded_says_so(
    server: JobdTestServer,
) -> None:
    """A job can succeed between jobd's check and the cancel's write: jobd then answers with
    it SUCCEEDED. Neither the table nor --json may say the cancel ended it."""
    from provena_jobd.cli.actions import _cancel_outcome

    session_id = (await server.client.launch("EMAIL", "EMAIL_WAKE_UP")).session_id
    job = await server.client.wait(session_id, timeout_s=10)
    assert job.status is JobStatus.SUCCEEDED
    assert _cancel_outcome(job) == (
        "finished",
        "not cancelled: the job had already finished SUCCEEDED",
    )
