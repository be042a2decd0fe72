"""The panel's server-side parts (issue 12): search over every job, why a job waits, and a
job's attempt timeline. Screenshots go to test-output/ui/, like tests/ui/test_panel.py."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import Browser, Page, expect

from provena_jobd.errors import RetryLater
from provena_jobd.http.serve import Running
from provena_jobd.workers.handlers import JobContext
from tests.ui.test_panel import Serve, launch, pytestmark, shot

__all__ = ["pytestmark"]


async def test_search_finds_a_job_that_is_not_on_the_first_page(
    browser: Browser, serve: Serve
) -> None:
    jobd = await serve(cold_start_s=1e9)  # every job stays PENDING: the list is stable
    needle = await launch(jobd, "EMAIL", "EMAIL_WAKE_UP", {"reason": "needle-in-a-haystack"})
    for _ in range(60):
        await launch(jobd, "EMAIL", "EMAIL_WAKE_UP", {"reason": "hay"})
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await page.goto(f"{jobd.url}/ui/#/jobs")
    rows = page.locator("#jobs tbody tr")
    await expect(rows).to_have_count(25)
    await expect(page.locator(f'tr[data-session-id="{needle}"]')).to_have_count(0)
    await page.fill("#filter-text", "NEEDLE")  # in the payload only, any case
    await expect(rows).to_have_count(1)
    await expect(page.locator(f'tr[data-session-id="{needle}"]')).to_be_visible()
    await expect(page.get_by_role("button", name="All jobs loaded")).to_be_visible()
    await shot(page, "search-beyond-first-page")
    await page.fill("#filter-text", "no such words")
    await expect(page.locator("#jobs + [role=status]")).to_have_text("No jobs match.")


async def waiting_notice(
    browser: Browser, jobd: Running, job: str, reason: str, words: str, countdown: str
) -> Page:
    """Open the job's details page; check its waiting notice gives `reason` in `words` and
    counts down (`countdown`: a pattern of its text about 30 s ahead)."""
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await page.goto(f"{jobd.url}/ui/#/jobs/{job}")
    notice = page.locator("#waiting")
    await expect(notice).to_have_attribute("data-reason", reason)
    await expect(notice).to_contain_text(words)
    await expect(notice).to_contain_text(re.compile(countdown))
    before = await notice.inner_text()
    await expect(notice).not_to_have_text(before, timeout=3000)  # it counts down
    return page


async def test_a_pending_job_in_a_cold_start_says_so_with_a_countdown(
    browser: Browser, serve: Serve
) -> None:
    jobd = await serve(cold_start_s=30)
    job = await launch(jobd, "EMAIL", "EMAIL_WAKE_UP", {})
    page = await waiting_notice(
        browser,
        jobd,
        job,
        "cold_start",
        "Waiting for a worker to finish starting (cold start)",
        r"ready in about (2\d|30) s",
    )
    await shot(page, "details-cold-start")
    # The Pools page counts down the same worker from the server's ready_at.
    await page.goto(f"{jobd.url}/ui/#/pools")
    worker = page.locator('section[data-job-type="EMAIL"] li[data-state="provisioning"]')
    await expect(worker).to_contain_text(
        re.compile(r"EMAIL-1: provisioning since .*ready in about (2\d|30) s")
    )
    await shot(page, "pools-cold-start")


async def test_a_delayed_job_says_it_is_scheduled_with_a_countdown(
    browser: Browser, serve: Serve
) -> None:
    jobd = await serve()  # a worker would be ready at once: only the delay holds the job
    job = await launch(jobd, "EMAIL", "EMAIL_WAKE_UP", {}, delay_s=30)
    page = await waiting_notice(
        browser,
        jobd,
        job,
        "scheduled",
        "Scheduled: waits until ",
        r"as launched; it may start in about (2\d|30) s",
    )
    await expect(page.locator("#waiting")).not_to_contain_text("Backing off")
    await shot(page, "details-scheduled")


async def test_a_retried_jobs_timeline_shows_both_attempts(browser: Browser, serve: Serve) -> None:
    calls = 0

    async def flaky(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RetryLater("the registry was busy")
        return {}

    jobd = await serve({"EMAIL_WAKE_UP": flaky})
    job = await launch(jobd, "EMAIL", "EMAIL_WAKE_UP", {})
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.goto(f"{jobd.url}/ui/#/jobs/{job}")
    await expect(page.locator(".status").first).to_have_text("SUCCEEDED", timeout=15_000)
    attempts = page.locator("#timeline > li")
    await expect(attempts).to_have_count(2)
    await expect(attempts.nth(0)).to_contain_text("Attempt 1: failed; retried")
    await expect(attempts.nth(0)).to_contain_text("the registry was busy")
    await expect(attempts.nth(0)).to_contain_text("Next attempt not before")
    await expect(attempts.nth(1)).to_contain_text("Attempt 2: succeeded")
    await expect(attempts.nth(1)).to_contain_text("Started")
    await shot(page, "details-timeline-retried")
