"""Provena's jobs end to end through HTTP against a real `jobd serve`: workflows, batches,
atomic launches, retry, cancel, email, webhooks, progress, wait_s and events."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiosmtpd.controller import Controller

from tests.process import JobdProcess
from tests.process import start as start_jobd

pytestmark = pytest.mark.acceptance
Json = dict[str, Any]
TERMINAL = {"SUCCEEDED", "FAILED"}
USER_INFO = "encrypted-user-context"
DECLARED = """
[jobs.LAUNCH_THEN_FAIL]
job_type = "REGISTRY"
handler = "python"
callable = "tests.e2e.handlers:launch_then_fail"

[jobs.PROGRESS_THEN_WAIT]
job_type = "REGISTRY"
handler = "python"
callable = "tests.e2e.handlers:progress_then_wait"
"""


class Api:
    """A tiny client for the tests."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        async with self.session.request(method, self.url + path, **kwargs) as response:
            body = await response.json()
            assert response.status == expect, body
            return body

    async def launch(self, job_type: str, sub_type: str, payload: Json, **extra: Any) -> Json:
        body = {"job_type": job_type, "job_sub_type": sub_type, "job_payload": payload, **extra}
        launched: Json = await self.call("POST", "/jobs/admin/launch", json=body)
        return launched

    async def fetch(self, session_id: str, wait_s: float = 0) -> Json:
        params = {"session_id": session_id, "wait_s": str(wait_s)}
        job: Json = (await self.call("GET", "/jobs/user/fetch", params=params))["job"]
        return job

    async def finished(self, session_id: str) -> Json:
        for _ in range(20):
            job = await self.fetch(session_id, wait_s=5)
            if job["status"] in TERMINAL:
                return job
        raise AssertionError(f"{session_id} did not finish")


Start = Callable[..., Awaitable[Api]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    """Start real jobd processes with extra config; stops them afterwards."""
    processes: list[JobdProcess] = []
    session = aiohttp.ClientSession()

    async def starter(config: str = "") -> Api:
        path = tmp_path / f"jobd-{len(processes)}.toml"
        path.write_text(DECLARED + config)
        args = ["--port", "0", "--db", str(tmp_path / "jobd.db"), "--config", str(path)]
        process = await asyncio.to_thread(start_jobd, args, tmp_path)
        processes.append(process)
        return Api(session, process.url)

    yield starter
    await session.close()
    for process in processes:
        status, errors = await asyncio.to_thread(process.stop)
        assert status == 0, errors
        assert "Traceback" not in errors, errors


async def test_the_creation_workflow_registers_then_lodges(start: Start) -> None:
    api = await start()
    payload = {
        "created_item_id": "10378.1/item",
        "created_item_subtype": "DATASET",
        "linked_person_id": "10378.1/person",
    }
    launched = await api.launch("REGISTRY", "REGISTER_CREATE_ACTIVITY", payload)
    register = await api.finished(launched["session_id"])
    assert register["status"] == "SUCCEEDED", register["info"]
    result = register["result"]
    assert set(result) == {"creation_activity_id", "lodge_session_id"}
    lodge = await api.finished(result["lodge_session_id"])
    assert lodge["status"] == "SUCCEEDED" and lodge["result"] == {}
    assert lodge["username"] == register["username"]
    assert lodge["parent_session_id"] == register["session_id"]
    assert lodge["payload"]["creation_activity_id"] == result["creation_activity_id"]
    for start_at in (register["session_id"], lodge["session_id"]):
        chain = await api.call("GET", "/jobs/user/workflow", params={"session_id": start_at})
        assert [s["job_sub_type"] for s in chain["steps"]] == [
            "REGISTER_CREATE_ACTIVITY",
            "LODGE_CREATE_ACTIVITY",
        ]
        assert chain["session_id"] == register["session_id"] and chain["done"] is True


async def test_the_version_workflow_registers_then_lodges(start: Start) -> None:
    api = await start()
    payload = {
        "reason": "fix",
        "version_number": 2,
        "from_version_id": "10378.1/v1",
        "to_version_id": "10378.1/v2",
        "linked_person_id": "10378.1/p",
        "item_subtype": "DATASET",
    }
    launched = await api.launch("REGISTRY", "REGISTER_VERSION_ACTIVITY", payload)
    register = await api.finished(launched["session_id"])
    assert register["status"] == "SUCCEEDED", register["info"]
    assert set(register["result"]) == {"version_activity_id", "lodge_session_id"}
    lodge = await api.finished(register["result"]["lodge_session_id"])
    assert (lodge["job_sub_type"], lodge["status"]) == ("LODGE_VERSION_ACTIVITY", "SUCCEEDED")
    assert lodge["payload"]["version_activity_id"] == register["result"]["version_activity_id"]


async def test_a_500_record_batch_submit(start: Start) -> None:
    api = await start("[pool]\nconcurrency = 20\n")
    records = [{"display_name": f"run {i}"} for i in range(500)]
    launched = await api.launch(
        "PROV_LODGE", "MODEL_RUN_BATCH_SUBMIT", {"records": records, "user_info": USER_INFO}
    )
    parent = await api.finished(launched["session_id"])
    assert parent["status"] == "SUCCEEDED", parent["info"]
    assert parent["info"] == "Successfully distributed batch jobs to queue."
    batch_id = parent["result"]["batch_id"]
    assert parent["batch_id"] is None  # the parent is not a member of its batch
    summary: Json = {}
    for _ in range(200):
        summary = await api.call("POST", "/jobs/user/batch_summary", json={"batch_id": batch_id})
        if summary["done"]:
            break
        await asyncio.sleep(0.05)
    assert summary["total"] == 500 and summary["counts"]["SUCCEEDED"] == 500
    assert summary["done"] is True and summary["all_succeeded"] is True
    members, key = [], None
    while True:
        page = await api.call(
            "POST",
            "/jobs/user/list_batch",
            json={"batch_id": batch_id, "limit": 100, "pagination_key": key},
        )
        members += page["jobs"]
        key = page["pagination_key"]
        if key is None:
            break
    assert len({m["session_id"] for m in members}) == 500
    assert {m["job_sub_type"] for m in members} == {"MODEL_RUN_PROV_LODGE"}
    assert parent["session_id"] not in {m["session_id"] for m in members}
    assert {m["result"]["record"]["record"]["display_name"] for m in members} == {
        r["display_name"] for r in records
    }


async def test_a_handler_that_fails_after_launching_leaves_no_children(start: Start) -> None:
    api = await start()
    launched = await api.launch("REGISTRY", "LAUNCH_THEN_FAIL", {})
    job = await api.finished(launched["session_id"])
    assert job["status"] == "FAILED"
    assert job["info"] == (
        "Callback function raised unhandled exception. Error: failed after launching children."
    )
    everyone = await api.call("POST", "/jobs/admin/list", json={"limit": 100})
    assert [j["session_id"] for j in everyone["jobs"]] == [launched["session_id"]]
    # Retrying it launches a new job that records what it retries.
    retried = await api.call(
        "POST", "/jobs/user/retry", params={"session_id": launched["session_id"]}
    )
    second = await api.finished(retried["session_id"])
    assert second["retry_of"] == launched["session_id"] and second["status"] == "FAILED"


async def test_cancel_of_a_waiting_job(start: Start) -> None:
    api = await start("[pool.EMAIL]\ncold_start_s = 3600\n")
    launched = await api.launch("EMAIL", "EMAIL_WAKE_UP", {})
    job = (
        await api.call("POST", "/jobs/user/cancel", params={"session_id": launched["session_id"]})
    )["job"]
    assert (job["status"], job["info"]) == ("FAILED", "Cancelled by local.")
    assert (await api.fetch(launched["session_id"]))["status"] == "FAILED"


async def test_progress_is_visible_mid_run_and_cancel_discards_partial_launches(
    start: Start, tmp_path: Path
) -> None:
    api = await start()
    go = tmp_path / "go"
    launched = await api.launch("REGISTRY", "PROGRESS_THEN_WAIT", {"go": str(go)})
    job: Json = {}
    for _ in range(500):
        job = await api.fetch(launched["session_id"])
        if job["progress"] is not None:
            break
        await asyncio.sleep(0.01)
    assert (job["status"], job["info"], job["progress"]) == (
        "IN_PROGRESS",
        "Halfway through the records",
        0.5,
    )
    cancelled = await api.call(
        "POST", "/jobs/user/cancel", params={"session_id": launched["session_id"]}
    )
    assert cancelled["job"]["status"] in {"IN_PROGRESS", "FAILED"}
    job = await api.finished(launched["session_id"])
    assert job["status"] == "FAILED"
    assert job["info"] == (
        "Cancelled by local. It was running; anything it had launched was discarded."
    )
    everyone = await api.call("POST", "/jobs/admin/list", json={})
    assert [j["session_id"] for j in everyone["jobs"]] == [launched["session_id"]]


async def test_wait_s_returns_as_soon_as_the_job_finishes(start: Start, tmp_path: Path) -> None:
    api = await start()
    go = tmp_path / "go"
    launched = await api.launch("REGISTRY", "PROGRESS_THEN_WAIT", {"go": str(go)})
    began = time.monotonic()
    waiting = asyncio.create_task(api.fetch(launched["session_id"], wait_s=30))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    go.touch()
    job = await waiting
    assert job["status"] == "SUCCEEDED" and time.monotonic() - began < 10
    # The child it launched exists now that it succeeded.
    everyone = await api.call("POST", "/jobs/admin/list", json={})
    assert len(everyone["jobs"]) == 2


async def test_the_event_stream_shows_a_job_moving_to_succeeded(start: Start) -> None:
    api = await start()
    seen: list[tuple[str, str]] = []
    async with api.session.get(api.url + "/jobs/user/events") as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        launched = await api.launch("EMAIL", "EMAIL_WAKE_UP", {})
        async with asyncio.timeout(10):
            async for raw in stream.content:
                line = raw.decode().strip()
                if not line.startswith("data: "):
                    continue
                job = json.loads(line[len("data: ") :])
                seen.append((job["session_id"], job["status"]))
                if job["status"] == "SUCCEEDED":
                    break
    statuses = [status for session_id, status in seen if session_id == launched["session_id"]]
    assert statuses[-1] == "SUCCEEDED"
    order = ["PENDING", "DEQUEUED", "IN_PROGRESS", "SUCCEEDED"]
    assert statuses == sorted(statuses, key=order.index)


class Inbox:
    """An aiosmtpd handler that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        from email import message_from_bytes

        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    # aiosmtpd checks its own port on start, so it needs a real one, not 0.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


async def test_an_email_reaches_a_real_smtp_server(start: Start, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    api = await start(f'[email]\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\n')
    payload = {
        "email_to": "alice@example.org",
        "subject": "Your batch finished",
        "body": "All 3 model runs are registered.",
        "reason": "batch done",
    }
    launched = await api.launch("EMAIL", "SEND_EMAIL", payload)
    job = await api.finished(launched["session_id"])
    assert job["status"] == "SUCCEEDED", job["info"]
    assert [m["Subject"] for m in inbox.messages] == ["Your batch finished"]
    assert inbox.messages[0]["To"] == "alice@example.org"
    bad = await api.launch("EMAIL", "SEND_EMAIL", {**payload, "email_to": "not-an-address"})
    failed = await api.finished(bad["session_id"])
    assert failed["status"] == "FAILED"
    assert failed["info"].startswith("Job failed, err: Email failed validation against regex")
    assert len(inbox.messages) == 1


async def test_without_smtp_emails_go_to_the_outbox(start: Start, tmp_path: Path) -> None:
    api = await start(f'[email]\noutbox = "{tmp_path / "outbox"}"\n')
    payload = {"email_to": "bob@example.org", "subject": "Hi", "body": "b", "reason": "r"}
    job = await api.finished((await api.launch("EMAIL", "SEND_EMAIL", payload))["session_id"])
    assert job["status"] == "SUCCEEDED"
    [written] = list((tmp_path / "outbox").iterdir())
    assert "Subject: Hi" in written.read_text()


async def test_a_webhook_handler(start: Start) -> None:
    calls: list[Json] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.json()
        calls.append(body)
        if body["payload"].get("fail"):
            return web.Response(status=503, text="upstream is down")
        return web.json_response({"echo": body["payload"]["value"]})

    app = web.Application()
    app.router.add_post("/hook", hook)
    async with TestServer(app, host="127.0.0.1") as server:
        url = server.make_url("/hook")
        api = await start(
            f'[jobs.HOOKED]\njob_type = "CUSTOM"\nhandler = "webhook"\nurl = "{url}"\n'
            "timeout_s = 5\n"
        )
        ok = await api.finished((await api.launch("CUSTOM", "HOOKED", {"value": 7}))["session_id"])
        assert (ok["status"], ok["result"]) == ("SUCCEEDED", {"echo": 7})
        bad = await api.finished(
            (await api.launch("CUSTOM", "HOOKED", {"value": 1, "fail": True}))["session_id"]
        )
        assert bad["status"] == "FAILED"
        assert "answered 503: upstream is down" in bad["info"]
    assert calls[0]["job_sub_type"] == "HOOKED" and calls[0]["username"] == "local"
