"""The jobs panel in a real browser (Debian's Chromium driven by Playwright).

Each test saves a screenshot of the page it checks under test-output/ui/.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from provena_jobd.config import from_dict
from provena_jobd.http.serve import Running, running
from provena_jobd.identity import hash_token
from provena_jobd.workers.handlers import Handler, JobContext

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "ui"
# Without chromium the browser tests are skipped on a developer's machine, but never in CI,
# which installs it and sets JOBD_REQUIRE_BROWSER.
pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not os.environ.get("JOBD_REQUIRE_BROWSER"),
        reason="Debian's chromium is not installed (apt-get install chromium)",
    ),
    pytest.mark.timeout(90),
]
USER_INFO = "encrypted-user-context"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield launched
        await launched.close()


Serve = Callable[..., Awaitable[Running]]


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    """Start jobd in this event loop with given handlers and pool settings."""
    stack: list[Any] = []

    async def starter(
        handlers: dict[str, Handler] | None = None, auth: dict[str, Any] | None = None, **pool: Any
    ) -> Running:
        settings = from_dict(
            {
                "storage": {"db": str(tmp_path / "jobd.db")},
                "server": {"port": 0},
                "pool": pool,
                "auth": auth or {},
            }
        )
        manager = running(settings, handlers=handlers)
        jobd = await manager.__aenter__()
        stack.append(manager)
        return jobd

    yield starter
    for manager in reversed(stack):
        await manager.__aexit__(None, None, None)


async def launch(
    jobd: Running, job_type: str, sub_type: str, payload: dict[str, Any], **extra: Any
) -> str:
    """Launch one job as admin; `extra` adds launch fields (`delay_s`, ...)."""
    body = {"job_type": job_type, "job_sub_type": sub_type, "job_payload": payload, **extra}
    async with (
        aiohttp.ClientSession() as session,
        session.post(jobd.url + "/jobs/admin/launch", json=body) as response,
    ):
        assert response.status == 200, await response.text()
        session_id: str = (await response.json())["session_id"]
        return session_id


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def test_launched_jobs_appear_without_reloading(browser: Browser, serve: Serve) -> None:
    jobd = await serve()
    first = await launch(jobd, "EMAIL", "EMAIL_WAKE_UP", {})
    page = await browser.new_page()
    await page.goto(jobd.url + "/")  # the health URL sends a browser to the panel
    await expect(page.locator(f'tr[data-session-id="{first}"]')).to_contain_text("SUCCEEDED")
    await expect(page.locator("#live")).to_have_text("● live")
    later = await launch(
        jobd,
        "REGISTRY",
        "REGISTER_CREATE_ACTIVITY",
        {
            "created_item_id": "10378.1/item",
            "created_item_subtype": "DATASET",
            "linked_person_id": "10378.1/p",
        },
    )
    row = page.locator(f'tr[data-session-id="{later}"]')
    await expect(row).to_contain_text("SUCCEEDED")
    await expect(row).to_contain_text("REGISTER_CREATE_ACTIVITY")
    # Newest first: the later job and the lodge job it launched come before the first one.
    ids = await page.locator("#jobs tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.sessionId)"
    )
    assert ids.index(later) < ids.index(first) and len(ids) == 3
    await page.select_option("#filter-status", "SUCCEEDED")
    await page.fill("#filter-text", "REGISTER")
    await expect(page.locator("#jobs tbody tr")).to_have_count(1)
    await shot(page, "job-list")


async def test_a_failed_job_shows_its_error_and_can_be_retried(
    browser: Browser, serve: Serve
) -> None:
    jobd = await serve()
    failed = await launch(
        jobd,
        "EMAIL",
        "SEND_EMAIL",
        {"email_to": "nobody", "subject": "s", "body": "b", "reason": "r"},
    )
    page = await browser.new_page()
    await page.goto(f"{jobd.url}/ui/#/jobs")
    await page.click(f'tr[data-session-id="{failed}"] a')
    await expect(page.locator("#info")).to_contain_text(
        "Error info: Job failed, err: Email failed validation"
    )
    await expect(page.locator("#meaning")).to_contain_text("did not finish successfully")
    assert "null" not in await page.locator("main").inner_text()
    await page.click("summary:has-text('Input')")
    await expect(page.locator("pre.json").first).to_contain_text('"email_to": "nobody"')
    await shot(page, "job-details-failed")
    await page.click("#retry")
    await expect(page.locator("h1")).not_to_contain_text(failed)
    await expect(page.locator("dl.fields")).to_contain_text(failed)  # "Retry of" links back
    await shot(page, "job-details-retry")


async def test_a_batch_of_200_fills_its_bar(browser: Browser, serve: Serve) -> None:
    release = asyncio.Event()

    async def held_lodge(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        await release.wait()
        return {"record": {"id": "10378.1/x", "prov_json": "{}", "record": payload["record"]}}

    jobd = await serve({"MODEL_RUN_PROV_LODGE": held_lodge}, concurrency=50)
    records = [{"name": f"run {i}"} for i in range(200)]
    parent = await launch(
        jobd, "PROV_LODGE", "MODEL_RUN_BATCH_SUBMIT", {"records": records, "user_info": USER_INFO}
    )
    page = await browser.new_page()
    await page.goto(f"{jobd.url}/ui/#/jobs/{parent}")
    batch_link = page.locator("a", has_text="Batch it launched")
    await expect(batch_link).to_be_visible()
    await batch_link.click()
    await expect(page.locator("#summary-line")).to_contain_text("0 of 200 finished")
    await expect(page.locator("#members tbody tr")).to_have_count(100)
    await shot(page, "batch-pending")
    release.set()
    await expect(page.locator("#summary-line")).to_contain_text(
        "All jobs in this batch succeeded! 200 of 200 finished.", timeout=20_000
    )
    await expect(page.locator("#batch-progress")).to_have_attribute("aria-valuenow", "200")
    await page.click("text=Load more members")
    await expect(page.locator("#members tbody tr")).to_have_count(200)
    await shot(page, "batch-done")


async def test_a_creation_workflow_shows_both_steps_succeed(browser: Browser, serve: Serve) -> None:
    release = asyncio.Event()

    async def held_register(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        from provena_jobd.workers.builtin import register_create_activity

        await release.wait()
        return await register_create_activity(context, payload)

    jobd = await serve({"REGISTER_CREATE_ACTIVITY": held_register})
    register = await launch(
        jobd,
        "REGISTRY",
        "REGISTER_CREATE_ACTIVITY",
        {
            "created_item_id": "10378.1/item",
            "created_item_subtype": "DATASET",
            "linked_person_id": "10378.1/p",
        },
    )
    page = await browser.new_page()
    await page.goto(f"{jobd.url}/ui/#/workflow/{register}")
    await expect(page.locator("#workflow-state")).to_have_text("This workflow is in progress.")
    await expect(page.locator(".step")).to_have_count(1)
    await shot(page, "workflow-running")
    release.set()
    await expect(page.locator(".step")).to_have_count(2)
    await expect(page.locator(".step.s-SUCCEEDED")).to_have_count(2)
    await expect(page.locator("#workflow-state")).to_have_text(
        "This workflow has finished successfully."
    )
    await expect(page.locator(".step").nth(1)).to_contain_text("LODGE_CREATE_ACTIVITY")
    await shot(page, "workflow-done")
    await page.locator(".step").nth(1).click()
    await expect(page.locator("dl.fields")).to_contain_text(register)  # "Launched by"


async def test_the_pools_page_during_a_burst(browser: Browser, serve: Serve) -> None:
    release = asyncio.Event()

    async def held(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        await release.wait()
        return {}

    jobd = await serve({"EMAIL_WAKE_UP": held}, max_workers=3)
    page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    await page.goto(f"{jobd.url}/ui/#/pools")
    await asyncio.gather(*(launch(jobd, "EMAIL", "EMAIL_WAKE_UP", {}) for _ in range(10)))
    email = page.locator('section[data-job-type="EMAIL"]')
    await expect(email.locator('[data-field="busy"]')).to_have_text("3")
    await expect(email.locator('[data-field="waiting"]')).to_have_text("7")
    await shot(page, "pools-burst")
    release.set()
    await expect(email.locator('[data-field="jobs_finished"]')).to_have_text("10")
    await expect(email.locator('[data-field="waiting"]')).to_have_text("0")
    await shot(page, "pools-after")


async def test_the_waker_and_keyboard_navigation(browser: Browser, serve: Serve) -> None:
    jobd = await serve()
    page = await browser.new_page()
    await page.goto(f"{jobd.url}/ui/#/jobs")
    await page.get_by_role("button", name="Wake up REGISTRY").focus()
    await page.keyboard.press("Enter")
    row = page.locator("#jobs tbody tr")
    await expect(row).to_contain_text("REGISTRY_WAKE_UP")
    await expect(row).to_contain_text("SUCCEEDED")


async def test_with_token_auth_the_panel_asks_for_a_token(browser: Browser, serve: Serve) -> None:
    token = "jobd_browser-test-token"
    roles = ["job-service-read", "job-service-write"]
    jobd = await serve(
        auth={
            "mode": "token",
            "tokens": [{"sha256": hash_token(token), "user": "carol", "roles": roles}],
        }
    )
    page = await browser.new_page()
    await page.goto(f"{jobd.url}/ui/")
    await expect(page.locator("#token-panel")).to_be_visible()
    await page.fill("#token-input", "jobd_wrong")
    await page.click("text=Use token")
    await expect(page.locator("#token-error")).to_contain_text("refused")
    await page.fill("#token-input", token)
    await page.click("text=Use token")
    await expect(page.locator("#token-panel")).to_be_hidden()
    await page.get_by_role("button", name="Wake up EMAIL").click()
    row = page.locator("#jobs tbody tr")
    await expect(row).to_contain_text("carol")
    await expect(row).to_contain_text("SUCCEEDED")
    await shot(page, "token-mode")


async def test_the_pools_page_lists_worker_processes_with_their_pids(
    browser: Browser, serve: Serve
) -> None:
    never_claims = [sys.executable, "-c", "import time; time.sleep(60)"]
    jobd = await serve(REGISTRY={"command": never_claims, "max_workers": 1})
    await launch(jobd, "REGISTRY", "REGISTRY_WAKE_UP", {})
    page = await browser.new_page()
    await page.goto(f"{jobd.url}/ui/#/pools")
    registry = page.locator('section[data-job-type="REGISTRY"]')
    await expect(registry.locator('[data-field="provisioning"]')).to_have_text("1")
    snapshots = await jobd.server.pool_snapshots()
    [process] = next(s for s in snapshots if s.job_type == "REGISTRY").processes
    assert process.pid is not None
    await expect(registry.locator(f'ul.workers li[data-pid="{process.pid}"]')).to_have_text(
        f"REGISTRY-p1 (pid {process.pid}): provisioning"
    )


async def test_the_pools_page_says_when_worker_processes_fail_to_start(
    browser: Browser, serve: Serve
) -> None:
    dies_at_once = [sys.executable, "-c", "import sys; sys.exit(3)"]
    jobd = await serve(REGISTRY={"command": dies_at_once, "max_workers": 1})
    await launch(jobd, "REGISTRY", "REGISTRY_WAKE_UP", {})
    page = await browser.new_page()
    await page.goto(f"{jobd.url}/ui/#/pools")
    registry = page.locator('section[data-job-type="REGISTRY"]')
    # jobd's sentence (`start_backoff.message`), as `jobd pool` and a waiting job say it.
    await expect(registry.locator('[data-field="start_backoff"]')).to_have_text(
        re.compile(
            r"^\d+ worker process starts? failed in a row \(the last exited with code 3\); "
            r"next start at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\.$"
        )
    )


async def test_the_list_shows_a_batchs_counts_without_asking_for_each_batch(
    browser: Browser, serve: Serve
) -> None:
    jobd = await serve()
    for _ in range(2):
        await launch(jobd, "EMAIL", "EMAIL_WAKE_UP", {}, request_batch_id=True)
    page = await browser.new_page()
    asked: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(jobd.url + "/ui/")
    batches = page.locator("#jobs tbody tr[data-batch-id]")
    await expect(batches).to_have_count(2)
    await expect(batches.locator(".c-count")).to_have_text(["1", "1"])
    await expect(batches.locator(".c-status")).to_have_text(["SUCCEEDED", "SUCCEEDED"])
    await page.get_by_role("button", name="Refresh").click()
    await expect(batches.locator(".c-count")).to_have_text(["1", "1"])
    assert not [url for url in asked if url.endswith("/batch_summary")]
    assert errors == []
