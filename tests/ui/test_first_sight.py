"""The jobs panel at first sight (issue 12): a full first screen, whole batches, phones.

Each test saves screenshots under test-output/ui/, like tests/ui/test_panel.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from playwright.async_api import Browser, Page, ViewportSize, expect

from provena_jobd.errors import JobFailed
from provena_jobd.identity import hash_token
from provena_jobd.workers.handlers import JobContext
from tests.helpers import eventually
from tests.ui.test_panel import USER_INFO, Serve, launch, pytestmark, shot

__all__ = ["pytestmark"]

PHONE: ViewportSize = {"width": 390, "height": 844}
REGISTER = {
    "created_item_id": "10378.1/item",
    "created_item_subtype": "DATASET",
    "linked_person_id": "10378.1/p",
}
FAILING_EMAIL = {"email_to": "nobody", "subject": "s", "body": "b", "reason": "r"}


async def batch_total(url: str, batch_id: str) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/jobs/admin/batch_summary", json={"batch_id": batch_id}) as response,
    ):
        total: int = (await response.json()).get("total", 0)
        return total


async def fetch(url: str, session_id: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url + "/jobs/admin/fetch", params={"session_id": session_id}) as response,
    ):
        job: dict[str, Any] = (await response.json())["job"]
        return job


async def assert_fits(page: Page, what: str) -> None:
    """Nothing on the page is wider than the screen (no sideways scrolling)."""
    widths = await page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    wide = await page.evaluate(
        """w => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > w + 0.5 || e.scrollWidth > w)
            .slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id)""",
        widths[1],
    )
    assert widths[0] <= widths[1], f"{what}: {widths[0]} px wide on a {widths[1]} px screen: {wide}"


async def test_first_load_shows_every_standalone_job_and_the_whole_batch(
    browser: Browser, serve: Serve
) -> None:
    release = asyncio.Event()

    async def lodge(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        if payload["record"]["name"] in ("run 0", "run 1"):
            raise JobFailed("the record was refused")
        await release.wait()
        return {"record": {"id": "10378.1/x", "prov_json": "{}", "record": payload["record"]}}

    jobd = await serve({"MODEL_RUN_PROV_LODGE": lodge}, concurrency=50)
    standalone = [
        await launch(jobd, "EMAIL", "EMAIL_WAKE_UP", {}),
        await launch(jobd, "REGISTRY", "REGISTRY_WAKE_UP", {}),
        await launch(jobd, "PROV_LODGE", "PROV_LODGE_WAKE_UP", {}),
        await launch(jobd, "EMAIL", "SEND_EMAIL", FAILING_EMAIL),
        await launch(jobd, "REGISTRY", "REGISTER_CREATE_ACTIVITY", REGISTER),
        await launch(jobd, "EMAIL", "EMAIL_WAKE_UP", {}),
    ]  # with the lodge job the registration launches: 7
    records = [{"name": f"run {i}"} for i in range(40)]
    parent = await launch(
        jobd, "PROV_LODGE", "MODEL_RUN_BATCH_SUBMIT", {"records": records, "user_info": USER_INFO}
    )
    batch_id = await eventually(
        lambda: _batch_of(jobd.url, parent), within_s=10, what="the batch submitted"
    )
    await eventually(lambda: _is(batch_total(jobd.url, batch_id), 40), what="40 members")
    last = await launch(jobd, "EMAIL", "EMAIL_WAKE_UP", {})

    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await page.goto(f"{jobd.url}/ui/#/jobs")
    batch_row = page.locator(f'tr[data-batch-id="{batch_id}"]')
    await expect(batch_row.locator("td.c-count")).to_have_text("40")
    # Its status and bar come from the whole batch: 2 failed, 38 running.
    await expect(batch_row.locator(".status")).to_have_text("IN PROGRESS")
    await expect(batch_row.locator('[role="progressbar"]')).to_have_attribute("aria-valuemax", "40")
    rows = page.locator("#jobs tbody tr[data-session-id]")
    await expect(rows).to_have_count(9)  # 7 standalone, the batch's parent, the last one
    for session_id in [*standalone, parent, last]:
        await expect(page.locator(f'tr[data-session-id="{session_id}"]')).to_be_visible()
    await shot(page, "first-load")

    # Filtered to FAILED, the batch still says its size, and how many of its jobs match.
    await page.select_option("#filter-status", "FAILED")
    await expect(batch_row.locator("td.c-count")).to_have_text("40 (2 match)")
    await shot(page, "first-load-failed-filter")

    # The batch page: one bar, and the failed members alone on request.
    await page.goto(f"{jobd.url}/ui/#/batch/{batch_id}")
    await expect(page.locator("#summary-line")).to_contain_text("2 of 40 finished")
    await expect(page.locator("#summary progress, #summary [role=progressbar]")).to_have_count(1)
    await page.check("#only-failed")
    await expect(page.locator("#members tbody tr")).to_have_count(2)
    await expect(page.locator("#members tbody tr").first).to_contain_text("the record was refused")
    await shot(page, "batch-only-failed")
    release.set()


async def _batch_of(url: str, parent: str) -> str | None:
    job = await fetch(url, parent)
    result = job.get("result") or {}
    batch_id: str | None = result.get("batch_id") if job["status"] == "SUCCEEDED" else None
    return batch_id


async def _is(total: Any, expected: int) -> bool:
    return bool(await total == expected)


async def test_every_page_fits_a_phone(browser: Browser, serve: Serve) -> None:
    release = asyncio.Event()

    async def held(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        await release.wait()
        return {"record": {"id": "10378.1/x", "prov_json": "{}", "record": payload["record"]}}

    async def failing(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        raise JobFailed("the registry said no to " + "a-very-long-word-" * 8)

    # EMAIL's pool has a long cold start, so its card shows a worker provisioning.
    jobd = await serve(
        {"MODEL_RUN_PROV_LODGE": held, "REGISTRY_WAKE_UP": failing}, EMAIL={"cold_start_s": 30}
    )
    failed = await launch(jobd, "REGISTRY", "REGISTRY_WAKE_UP", {})
    register = await launch(jobd, "REGISTRY", "REGISTER_CREATE_ACTIVITY", REGISTER)
    records = [{"name": f"run {i}"} for i in range(5)]
    parent = await launch(
        jobd, "PROV_LODGE", "MODEL_RUN_BATCH_SUBMIT", {"records": records, "user_info": USER_INFO}
    )
    batch_id = await eventually(lambda: _batch_of(jobd.url, parent), what="the batch")
    await launch(jobd, "EMAIL", "EMAIL_WAKE_UP", {})

    page = await browser.new_page(viewport=PHONE)
    await page.goto(f"{jobd.url}/ui/#/jobs")
    row = page.locator(f'tr[data-session-id="{register}"]')
    for column in ("a.id", "td.c-type", "td.c-status", "td.c-created"):  # the ones that matter
        await expect(row.locator(column)).to_be_visible()
    await expect(page.locator(f'tr[data-batch-id="{batch_id}"] td.c-count')).to_have_text("5")
    await shot(page, "phone-list")
    await assert_fits(page, "job list")

    await page.goto(f"{jobd.url}/ui/#/jobs/{failed}")
    await expect(page.locator("#info")).to_contain_text("Error info")
    await shot(page, "phone-details")
    await assert_fits(page, "job details")

    await page.goto(f"{jobd.url}/ui/#/batch/{batch_id}")
    await expect(page.locator("#members tbody tr")).to_have_count(5)
    await shot(page, "phone-batch")
    await assert_fits(page, "batch")

    await page.goto(f"{jobd.url}/ui/#/workflow/{register}")
    steps = page.locator(".step")
    await expect(steps).to_have_count(2)
    await shot(page, "phone-workflow")
    # Stacked on a phone, the arrow between the cards points down, from the first to the second.
    first, second = await steps.nth(0).bounding_box(), await steps.nth(1).bounding_box()
    assert first and second and second["y"] > first["y"] + first["height"]
    arrow = (
        await page.locator(".flow li")
        .nth(1)
        .evaluate("li => getComputedStyle(li, '::before').content")
    )
    assert arrow == '"↓"'
    await assert_fits(page, "workflow")

    await page.goto(f"{jobd.url}/ui/#/pools")
    email = page.locator('section[data-job-type="EMAIL"]')
    await expect(email.locator('li[data-state="provisioning"]')).to_contain_text("ready in about")
    chart = email.locator("svg.chart")
    await expect(chart.locator(".x-axis text")).to_have_text(
        ["\u221259 s", "\u221230 s", "now"]
    )  # minus signs
    await expect(chart.locator(".y-axis text").first).to_have_text("0")
    await expect(chart.locator(".y-axis text")).to_have_count(3)
    await shot(page, "phone-pools")
    await assert_fits(page, "pools")
    release.set()


async def test_cancel_asks_first_and_retry_is_not_where_cancel_was(
    browser: Browser, serve: Serve
) -> None:
    async def held(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        await asyncio.Event().wait()  # runs until cancelled
        return {}

    jobd = await serve({"EMAIL_WAKE_UP": held})
    job = await launch(jobd, "EMAIL", "EMAIL_WAKE_UP", {})
    await eventually(lambda: _has_status(jobd.url, job, "IN_PROGRESS"), what="running")
    page = await browser.new_page()
    await page.goto(f"{jobd.url}/ui/#/jobs/{job}")
    await expect(page.locator(".status").first).to_have_text("IN PROGRESS")
    await page.click("#cancel")
    await expect(page.locator("#cancel-confirm")).to_be_visible()
    await shot(page, "cancel-confirm")
    await page.click("#cancel-keep")  # changed their mind: nothing happens
    await expect(page.locator("#cancel-confirm")).to_have_count(0)
    assert (await fetch(jobd.url, job))["status"] == "IN_PROGRESS"

    await page.click("#cancel")
    confirm = await page.locator("#cancel-confirm").bounding_box()
    await page.click("#cancel-confirm")
    await eventually(lambda: _has_status(jobd.url, job, "FAILED"), what="cancelled")
    await expect(page.locator(".status").first).to_have_text("FAILED")
    assert (await fetch(jobd.url, job))["info"].startswith("Cancelled by")
    # The job has ended, so no "Cancel requested." is left on screen.
    await expect(page.locator("#feedback")).to_have_text("")
    retry = await page.locator("#retry").bounding_box()
    assert confirm and retry
    overlaps = not (
        retry["x"] > confirm["x"] + confirm["width"] or confirm["x"] > retry["x"] + retry["width"]
    )
    assert not overlaps, "Retry appeared where a second click on Cancel would land"
    await shot(page, "cancel-done")


async def test_a_report_link_is_a_link(browser: Browser, serve: Serve) -> None:
    async def report(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        return {"report_url": f"{context.public_url}/reports/r.docx?expires=1&signature=x"}

    jobd = await serve({"GENERATE_REPORT": report})
    job = await launch(
        jobd,
        "REPORT",
        "GENERATE_REPORT",
        {"id": "10378.1/s", "item_subtype": "STUDY", "depth": 1, "user_info": USER_INFO},
    )
    page = await browser.new_page()
    await page.goto(f"{jobd.url}/ui/#/jobs/{job}")
    link = page.locator("a#report-link")
    await expect(link).to_have_attribute("href", f"{jobd.url}/reports/r.docx?expires=1&signature=x")
    await shot(page, "report-link")


async def _has_status(url: str, session_id: str, status: str) -> bool:
    job = await fetch(url, session_id)
    return bool(job["status"] == status)


async def test_renamed_roles_unlock_admin_mode_which_lives_in_the_url(
    browser: Browser, serve: Serve
) -> None:
    token = "jobd_renamed-roles-token"
    jobd = await serve(
        auth={
            "mode": "token",
            "roles": {"read": "readers", "write": "writers"},
            "tokens": [
                {"sha256": hash_token(token), "user": "dana", "roles": ["readers", "writers"]}
            ],
        }
    )
    page = await browser.new_page()
    await page.goto(f"{jobd.url}/ui/")
    await page.fill("#token-input", token)
    await page.click("text=Use token")
    # The server says which rights "readers" and "writers" grant: the waker and admin mode show.
    await expect(page.get_by_role("button", name="Wake up EMAIL")).to_be_visible()
    await page.check("#admin-mode")
    await expect(page).to_have_url(f"{jobd.url}/ui/#/jobs?admin=1")
    await expect(page.locator("h1")).to_have_text("Job history (all users)")
    await page.reload()  # the token stays for the tab's session; the mode stays in the URL
    await expect(page.locator("#admin-mode")).to_be_checked()
    await shot(page, "admin-mode")
