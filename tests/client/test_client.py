"""`JobdClient` against a real jobd started by the `jobd_server` fixtures: every method,
the models it returns and the errors it raises."""

from __future__ import annotations

import asyncio
import socket

import msgspec
import pytest

from provena_jobd.client import (
    BadRequest,
    Conflict,
    ConnectionFailed,
    EventStream,
    Forbidden,
    JobdClient,
    JobdClientError,
    NotFound,
    ResponseError,
    ServerError,
    Unauthorized,
    ValidationFailed,
    WaitTimedOut,
    error_for,
    job_payload,
    job_result,
)
from provena_jobd.client.errors import refusal
from provena_jobd.errors import JobdError
from provena_jobd.identity import hash_token
from provena_jobd.models import (
    BatchSummary,
    Job,
    JobStatus,
    LaunchJobResponse,
    ReplayedLaunch,
    RetryResponse,
    WorkflowResponse,
)
from provena_jobd.pool_models import PoolsResponse
from provena_jobd.testing import JobdServerFactory, JobdTestServer
from tests.client.handlers import JOB_TYPE, JOBS, STEP, gate
from tests.helpers import eventually

WAKE = ("EMAIL", "EMAIL_WAKE_UP")


@pytest.fixture
async def jobd(jobd_server_factory: JobdServerFactory) -> JobdTestServer:
    """A jobd that also runs the tests' STEP jobs."""
    return await jobd_server_factory(jobs=JOBS)


async def test_launch_fetch_and_wait_return_the_servers_models(
    jobd_server: JobdTestServer,
) -> None:
    client = jobd_server.client
    assert await client.health() == "Health check successful."
    launched = await client.launch(*WAKE, {"reason": "test"})
    assert isinstance(launched, LaunchJobResponse) and launched.batch_id is None
    fetched = await client.fetch(launched.session_id)
    assert isinstance(fetched, Job) and fetched.session_id == launched.session_id
    assert job_payload(fetched) == {"reason": "test"}
    job = await client.wait(launched.session_id, timeout_s=10)
    assert job.status is JobStatus.SUCCEEDED and job_result(job) == {}
    assert job.attempt == 1 and job.finished_timestamp is not None
    admin_view = await client.fetch(launched.session_id, admin=True)
    assert msgspec.json.encode(admin_view) == msgspec.json.encode(job)


async def test_launch_once_per_key_and_with_a_delay(jobd_server: JobdTestServer) -> None:
    client = jobd_server.client
    first = await client.launch(*WAKE, {"reason": "r"}, idempotency_key="k", delay_s=600)
    again = await client.launch(*WAKE, {"reason": "r"}, idempotency_key="k", delay_s=600)
    assert again == first  # the same job, as before the client told replays apart
    assert isinstance(again, ReplayedLaunch) and again.replayed  # and launched nothing
    assert type(first) is LaunchJobResponse and not first.replayed
    assert msgspec.json.encode(again) == msgspec.json.encode(first)  # the API's body, as is
    with pytest.raises(Conflict) as reused:
        await client.launch(*WAKE, {"reason": "other"}, idempotency_key="k", delay_s=600)
    assert reused.value.status == 409 and first.session_id in reused.value.message
    assert [job.session_id async for job in client.list_jobs()] == [first.session_id]
    job = await client.fetch(first.session_id)
    assert job.status is JobStatus.PENDING
    assert job.info is not None and job.info.startswith("Scheduled: waits until ")


async def test_wait_long_polls_instead_of_polling(jobd: JobdTestServer) -> None:
    client = jobd.client
    opened = gate("wait")
    launched = await client.launch(JOB_TYPE, STEP, {"gate": "wait", "echo": 7})
    waits: list[float] = []  # each fetch's wait_s
    fetch = client.fetch

    async def counted(session_id: str, *, admin: bool = False, wait_s: float = 0.0) -> Job:
        waits.append(wait_s)
        return await fetch(session_id, admin=admin, wait_s=wait_s)

    client.fetch = counted  # type: ignore[method-assign]
    waiting = asyncio.create_task(client.wait(launched.session_id, timeout_s=30))
    await eventually(lambda: _status_is(client, launched.session_id, JobStatus.IN_PROGRESS))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    opened.set()
    job = await waiting
    assert job.status is JobStatus.SUCCEEDED and job_result(job) == {"echo": 7}
    # One long poll of (almost) 30 s, no polling (the other fetches here are the test's own).
    assert [wait_s for wait_s in waits if wait_s > 0] == [pytest.approx(30, abs=0.5)]


async def _status_is(client: JobdClient, session_id: str, status: JobStatus) -> bool:
    return (await client.fetch(session_id)).status is status


async def test_wait_gives_up_after_its_timeout(jobd: JobdTestServer) -> None:
    opened = gate("slow")
    launched = await jobd.client.launch(JOB_TYPE, STEP, {"gate": "slow"})
    with pytest.raises(WaitTimedOut) as caught:
        await jobd.client.wait(launched.session_id, timeout_s=0.2)
    assert caught.value.job.status in {JobStatus.PENDING, JobStatus.DEQUEUED, JobStatus.IN_PROGRESS}
    assert "did not finish within 0.2 s" in caught.value.message
    assert isinstance(caught.value, JobdClientError) and caught.value.status is None
    opened.set()
    assert (await jobd.client.wait(launched.session_id)).status is JobStatus.SUCCEEDED


async def test_list_pages_by_itself_newest_first(jobd_server: JobdTestServer) -> None:
    client = jobd_server.client
    mine = [(await client.launch(*WAKE)).session_id for _ in range(7)]
    theirs = (await client.launch(*WAKE, username="alice")).session_id
    listed = [job.session_id async for job in client.list_jobs(page_size=3)]
    assert listed == mine[::-1]
    assert [job.session_id async for job in client.list_jobs(page_size=2, limit=5)] == mine[::-1][
        :5
    ]
    everyone = [job.session_id async for job in client.list_jobs(admin=True, page_size=1000)]
    assert everyone == [theirs, *mine[::-1]]
    assert [job.session_id async for job in client.list_jobs(username="alice")] == [theirs]
    assert [job async for job in client.list_jobs(username="nobody")] == []


async def test_batches_list_and_summary(jobd: JobdTestServer) -> None:
    client = jobd.client
    first = await client.launch(*WAKE, new_batch=True)
    assert first.batch_id is not None
    batch_id = first.batch_id
    rest = [await client.launch(*WAKE, batch_id=batch_id) for _ in range(4)]
    assert {launched.batch_id for launched in rest} == {batch_id}
    failing = await client.launch(JOB_TYPE, STEP, {"fail": "on purpose"}, batch_id=batch_id)
    members = [job async for job in client.list_batch(batch_id, page_size=2)]
    assert [job.session_id for job in members] == [
        failing.session_id,
        *[launched.session_id for launched in reversed(rest)],
        first.session_id,
    ]
    admin_members = [job async for job in client.list_batch(batch_id, admin=True, limit=3)]
    assert len(admin_members) == 3

    async def done() -> BatchSummary | None:
        summary = await client.batch_summary(batch_id)
        return summary if summary.done else None

    summary = await eventually(done)
    assert isinstance(summary, BatchSummary)
    assert (summary.total, summary.counts["SUCCEEDED"], summary.counts["FAILED"]) == (6, 5, 1)
    assert summary.all_succeeded is False
    assert (await client.batch_summary(batch_id, admin=True)).total == 6
    with pytest.raises(BadRequest) as caught:
        await client.launch(*WAKE, batch_id="no-such-batch")
    assert caught.value.status == 400 and "no-such-batch" in str(caught.value.detail)


async def test_retry_relaunches_a_failed_job(jobd: JobdTestServer) -> None:
    client = jobd.client
    failed = await client.wait(
        (await client.launch(JOB_TYPE, STEP, {"fail": "broken"})).session_id, timeout_s=10
    )
    assert (failed.status, failed.info) == (JobStatus.FAILED, "Job failed, err: broken.")
    retried = await client.retry(failed.session_id)
    assert isinstance(retried, RetryResponse) and retried.session_id != failed.session_id
    again = await client.wait(retried.session_id, timeout_s=10)
    assert again.retry_of == failed.session_id and job_payload(again) == {"fail": "broken"}
    admin_retry = await client.retry(failed.session_id, admin=True)
    assert (await client.fetch(admin_retry.session_id)).retry_of == failed.session_id
    ok = await client.wait((await client.launch(*WAKE)).session_id, timeout_s=10)
    with pytest.raises(BadRequest) as caught:
        await client.retry(ok.session_id)
    assert caught.value.detail == (
        f"Only a FAILED job can be retried; job {ok.session_id} is SUCCEEDED."
    )


async def test_cancel_a_waiting_and_a_running_job(jobd_server_factory: JobdServerFactory) -> None:
    jobd = await jobd_server_factory(jobs=JOBS, pool={"EMAIL": {"cold_start_s": 3600}})
    client = jobd.client
    waiting = await client.launch(*WAKE)
    cancelled = await client.cancel(waiting.session_id)
    assert (cancelled.status, cancelled.info) == (JobStatus.FAILED, "Cancelled by local.")
    gate("cancel")
    running = await client.launch(JOB_TYPE, STEP, {"gate": "cancel"})
    await eventually(lambda: _status_is(client, running.session_id, JobStatus.IN_PROGRESS))
    await client.cancel(running.session_id, admin=True)
    job = await client.wait(running.session_id, timeout_s=10)
    assert job.status is JobStatus.FAILED and job.info is not None
    assert job.info.startswith("Cancelled by local.")
    with pytest.raises(BadRequest, match="has already finished"):
        await client.cancel(running.session_id)


async def test_workflow_and_pool(jobd_server: JobdTestServer) -> None:
    client = jobd_server.client
    payload = {
        "created_item_id": "10378.1/item",
        "created_item_subtype": "DATASET",
        "linked_person_id": "10378.1/person",
    }
    launched = await client.launch("REGISTRY", "REGISTER_CREATE_ACTIVITY", payload)
    register = await client.wait(launched.session_id, timeout_s=10)
    await client.wait(job_result(register)["lodge_session_id"], timeout_s=10)
    chain = await client.workflow(launched.session_id)
    assert isinstance(chain, WorkflowResponse) and chain.done
    assert [step.job_sub_type for step in chain.steps] == [
        "REGISTER_CREATE_ACTIVITY",
        "LODGE_CREATE_ACTIVITY",
    ]
    assert (await client.workflow(launched.session_id, admin=True)).session_id == chain.session_id
    pools = await client.pool()
    assert isinstance(pools, PoolsResponse)
    by_type = {snapshot.job_type: snapshot for snapshot in pools.pools}
    assert {"PROV_LODGE", "REGISTRY", "EMAIL", "REPORT"} <= set(by_type)
    assert by_type["REGISTRY"].jobs_finished == 1
    assert by_type["REGISTRY"].settings.idle_timeout_s == 5.0  # the fixture's setting


async def test_the_event_stream_yields_each_change(jobd_server: JobdTestServer) -> None:
    client = jobd_server.client
    big = "x" * 200_000  # an event line longer than aiohttp's readline accepts
    statuses: list[JobStatus] = []
    async with client.events() as events:
        assert isinstance(events, EventStream)
        launched = await client.launch(*WAKE, {"reason": big})
        async with asyncio.timeout(10):
            async for job in events:
                if job.session_id == launched.session_id:
                    statuses.append(job.status)
                    assert job_payload(job) == {"reason": big}
                if job.status is JobStatus.SUCCEEDED:
                    break
    assert statuses[-1] is JobStatus.SUCCEEDED
    order = list(JobStatus)
    assert statuses == sorted(statuses, key=order.index)


async def test_the_event_stream_ends_when_jobd_closes_it(jobd_server: JobdTestServer) -> None:
    events = jobd_server.client.events()
    await events.open()
    await jobd_server.server.feed.close()  # what a shutting-down jobd does first
    async with asyncio.timeout(10):
        assert [job async for job in events] == []


async def test_close_ends_open_streams_and_the_client_can_be_used_again(
    jobd_server: JobdTestServer,
) -> None:
    client = JobdClient(jobd_server.url)
    events = await client.events().open()
    await client.close()
    async with asyncio.timeout(5):
        assert [job async for job in events] == []
    assert await client.health() == "Health check successful."
    await client.close()
    await client.close()  # closing twice is harmless


async def test_errors_carry_the_servers_detail(jobd_server: JobdTestServer) -> None:
    client = jobd_server.client
    with pytest.raises(NotFound) as not_found:
        await client.fetch("no-such-job")
    assert (not_found.value.status, not_found.value.detail) == (400, "Item was not found.")
    assert isinstance(not_found.value, BadRequest | ResponseError | JobdError)
    assert str(not_found.value) == "Item was not found."
    with pytest.raises(NotFound):
        await client.cancel("no-such-job")
    with pytest.raises(ValidationFailed) as invalid:
        await client.launch("EMAIL", "NOT_A_SUB_TYPE")
    assert invalid.value.status == 422 and invalid.value.detail[0]["loc"] == [
        "body",
        "job_sub_type",
    ]
    assert invalid.value.message.startswith("body.job_sub_type: ")
    with pytest.raises(BadRequest) as mismatch:
        await client.launch("EMAIL", "REGISTRY_WAKE_UP")
    assert "REGISTRY_WAKE_UP" in mismatch.value.message
    with pytest.raises(ValidationFailed) as bad_limit:
        await client.list_jobs(page_size=0).__anext__()
    assert bad_limit.value.detail[0]["loc"] == ["body", "limit"]
    theirs = await client.launch(*WAKE, username="alice")
    with pytest.raises(Unauthorized) as other_user:
        await client.fetch(theirs.session_id)
    assert other_user.value.detail == "Not authorised to view this record."


async def test_tokens_and_roles(jobd_server_factory: JobdServerFactory) -> None:
    reader, writer = "jobd_reader-secret", "jobd_writer-secret"
    tokens = [
        {"sha256": hash_token(reader), "user": "reader", "roles": ["job-service-read"]},
        {
            "sha256": hash_token(writer),
            "user": "writer",
            "roles": ["job-service-read", "job-service-write"],
        },
    ]
    jobd = await jobd_server_factory(auth={"mode": "token", "tokens": tokens}, token=writer)
    launched = await jobd.client.launch(*WAKE)
    assert (await jobd.client.fetch(launched.session_id)).username == "writer"
    async with JobdClient(jobd.url) as anonymous:
        with pytest.raises(Unauthorized) as caught:
            await anonymous.fetch(launched.session_id)
        assert caught.value.detail == "Not authenticated"
    async with JobdClient(jobd.url, token="jobd_wrong") as wrong:
        with pytest.raises(Unauthorized):
            await wrong.list_jobs().__anext__()
    async with JobdClient(jobd.url, token=reader) as read_only:
        with pytest.raises((Unauthorized, Forbidden)) as refused:
            await read_only.launch(*WAKE)
        assert refused.value.status in {401, 403} and refused.value.detail
        assert [job async for job in read_only.list_jobs()] == []


async def test_an_unreachable_jobd() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with JobdClient(f"http://127.0.0.1:{port}") as client:
        with pytest.raises(ConnectionFailed) as caught:
            await client.health()
        assert caught.value.status is None and f"127.0.0.1:{port}" in caught.value.message
        with pytest.raises(ConnectionFailed):
            await client.events().open()


def test_error_bodies_map_to_the_exception_family() -> None:
    server_error = error_for(500, b'{"detail": "Unexpected internal error occurred: boom"}')
    assert isinstance(server_error, ServerError) and server_error.status == 500
    not_json = error_for(502, b"<html>Bad gateway</html>")
    assert isinstance(not_json, ServerError) and not_json.detail == "<html>Bad gateway</html>"
    too_large = error_for(413, b'{"detail": "Request body too large"}')
    assert type(too_large) is ResponseError and too_large.status == 413
    assert isinstance(error_for(403, b'{"detail": "no"}'), Forbidden)


def test_an_answer_jobd_does_not_give_says_so_in_one_line() -> None:
    url = "http://127.0.0.1:8421"
    page = b"<html><head><title>502 Bad Gateway</title></head>\n<body>nginx</body></html>"
    proxied = refusal(url, "GET /admin/pool", 502, "Bad Gateway", "text/html", page)
    assert isinstance(proxied, ServerError) and proxied.status == 502  # still a 5xx to retry
    assert proxied.message == (
        f"{url} does not look like a jobd server: GET /admin/pool answered 502 Bad Gateway "
        "(text/html, not JSON)"
    )
    assert proxied.from_jobd is False and proxied.detail == page.decode()
    jobd_404 = refusal(url, "GET /admin/pool", 404, "Not Found", "application/json",
                       b'{"detail": "Not Found"}')  # fmt: skip
    assert jobd_404.message.endswith("GET /admin/pool answered 404 Not Found")
    assert jobd_404.from_jobd is False  # jobd has every route the client calls
    refused = refusal(url, "POST /jobs/admin/launch", 400, "Bad Request", "application/json",
                      b'{"detail": "Job type mismatch."}')  # fmt: skip
    assert (refused.message, refused.from_jobd) == ("Job type mismatch.", True)
