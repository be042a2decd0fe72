"""Operators' routes: /metrics counts what happened, /livez and /readyz answer supervisors."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from provena_jobd.errors import RetryLater
from provena_jobd.http.app import create_app
from provena_jobd.http.serve import running
from provena_jobd.identity import hash_token
from provena_jobd.metrics import sample
from provena_jobd.models import JobStatus, LaunchJobRequest
from provena_jobd.server import JobdServer
from provena_jobd.workers.handlers import JobContext
from tests.helpers import ServedAsJobd, job_in, settings_for

ANY_PORT = {"port": 0}  # never the default port: other jobds may run on this machine
REPO = Path(__file__).resolve().parents[2]
WAKE: dict[str, Any] = {"job_type": "EMAIL", "job_sub_type": "EMAIL_WAKE_UP", "job_payload": {}}


async def flaky(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Fails its first attempt with a transient error, then succeeds."""
    if context.attempt == 1:
        raise RetryLater("not yet")
    return {}


async def scrape(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> str:
    async with http.get(f"{url}/metrics", **kwargs) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return await response.text()


async def test_metrics_count_jobs_workers_retries_and_requests(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path, server=ANY_PORT, queue={"backoff_base_s": 0.0, "backoff_max_s": 0.0}
    )
    async with (
        running(settings, handlers={"EMAIL_WAKE_UP": flaky}) as jobd,
        aiohttp.ClientSession() as http,
    ):
        async with http.post(f"{jobd.url}/jobs/admin/launch", json=WAKE) as response:
            session_id = (await response.json())["session_id"]
        await job_in(jobd.server.store, session_id, JobStatus.SUCCEEDED)
        async with http.get(f"{jobd.url}/jobs/user/fetch", params={"session_id": "nope"}) as r:
            assert r.status == 400

        text = await scrape(http, jobd.url)

    email = {"job_type": "EMAIL"}
    assert sample(text, "jobd_jobs_launched_total", {**email, "sub_type": "EMAIL_WAKE_UP"}) == 1
    succeeded = {**email, "sub_type": "EMAIL_WAKE_UP", "status": "SUCCEEDED"}
    assert sample(text, "jobd_jobs_finished_total", succeeded) == 1
    assert sample(text, "jobd_job_retries_total", email) == 1
    assert sample(text, "jobd_job_wait_seconds_count", email) == 2  # both attempts started
    assert sample(text, "jobd_job_run_seconds_count", email) == 1
    assert sample(text, "jobd_worker_cold_starts_total", email) >= 1
    assert sample(text, "jobd_workers", email) >= 1
    assert sample(text, "jobd_jobs_waiting", email) == 0
    assert sample(text, "jobd_store_transactions_total") >= 1
    assert sample(text, "jobd_store_writes_total") >= sample(text, "jobd_store_transactions_total")
    launch = {"method": "POST", "route": "/jobs/admin/launch", "status": "200"}
    assert sample(text, "jobd_http_requests_total", launch) == 1
    # By route template and status, never by the raw path with its query.
    missing = {"method": "GET", "route": "/jobs/user/fetch", "status": "400"}
    assert sample(text, "jobd_http_requests_total", missing) == 1


async def test_each_server_counts_only_its_own_jobs(tmp_path: Path) -> None:
    first = JobdServer(settings_for(tmp_path, storage={"db": str(tmp_path / "a.db")}))
    second = JobdServer(settings_for(tmp_path, storage={"db": str(tmp_path / "b.db")}))
    await first.start()
    await second.start()
    try:
        await first.service.launch(LaunchJobRequest(**WAKE), caller="alice")
        assert sample(await first.metrics_text(), "jobd_jobs_launched_total") == 1
        assert sample(await second.metrics_text(), "jobd_jobs_launched_total") == 0
    finally:
        await first.stop(grace_s=0)
        await second.stop(grace_s=0)


async def test_metrics_need_the_read_role_unless_on_their_own_listener(tmp_path: Path) -> None:
    token = "jobd_metrics-reader"
    settings = settings_for(
        tmp_path,
        server=ANY_PORT,
        auth={
            "mode": "token",
            "tokens": [{"sha256": hash_token(token), "user": "ops", "roles": []}],
        },
        metrics={"listen": "127.0.0.1:0"},
    )
    async with running(settings) as jobd, aiohttp.ClientSession() as http:
        async with http.get(f"{jobd.url}/metrics") as response:
            assert response.status == 401
        headers = {"Authorization": f"Bearer {token}"}
        async with http.get(f"{jobd.url}/metrics", headers=headers) as response:
            assert response.status == 401  # a valid token without the read role
        listener = jobd.server.metrics_url
        assert listener is not None and listener != f"{jobd.url}/metrics"
        async with http.get(listener) as response:
            assert response.status == 200
            assert "jobd_jobs_waiting" in await response.text()


async def test_liveness_and_readiness(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path, server=ANY_PORT, auth={"mode": "token", "tokens": [_ANY_TOKEN]}
    )
    async with running(settings) as jobd, aiohttp.ClientSession() as http:
        for path, expected in (("/livez", "alive"), ("/readyz", "ready")):
            async with http.get(f"{jobd.url}{path}") as response:  # no credentials needed
                assert (response.status, (await response.json())["status"]) == (200, expected)
        # Shutdown begins: not ready any more while in-flight work drains, still alive.
        await jobd.server.stop_outside_workers(grace_s=0)
        async with http.get(f"{jobd.url}/readyz") as response:
            body = await response.json()
            assert response.status == 503 and body["status"] == "unavailable"
        async with http.get(f"{jobd.url}/livez") as response:
            assert response.status == 200


async def test_not_ready_before_the_server_started(tmp_path: Path) -> None:
    server = JobdServer(settings_for(tmp_path))
    async with TestClient(ServedAsJobd(create_app(server))) as client:
        response = await client.get("/readyz")
        assert response.status == 503
        assert (await client.get("/livez")).status == 200


_ANY_TOKEN = {"sha256": "0" * 64, "user": "nobody", "roles": []}


@pytest.fixture(autouse=True)
def _no_global_registry() -> Iterator[None]:
    """jobd never registers with prometheus_client's global registry."""
    yield
    assert not [family for family in REGISTRY.collect() if family.name.startswith("jobd")]


async def test_the_sample_dashboard_uses_only_metrics_jobd_exports(tmp_path: Path) -> None:
    dashboard = json.loads((REPO / "docs" / "grafana-dashboard.json").read_text())
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"jobd_[a-z_]+", target["expr"])
    }
    server = JobdServer(settings_for(tmp_path))
    await server.start()
    try:
        exported = {
            item.name
            for family in text_string_to_metric_families((await server.metrics_text()).decode())
            for item in family.samples
        }
        # Families with labels show no sample until first used: take their declared names.
        for family in server.metrics.registry.collect():
            exported |= {family.name + suffix for suffix in ("", "_total", "_bucket")}
    finally:
        await server.stop(grace_s=0)
    assert used and used <= exported, used - exported
