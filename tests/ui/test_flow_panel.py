"""The Pools page's pause/resume buttons and schedules, in a real browser (issue 14)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from provena_jobd.config import from_dict
from provena_jobd.http.serve import Running, running
from provena_jobd.identity import hash_token
from tests.ui import test_panel
from tests.ui.test_panel import Serve, launch, shot

pytestmark = test_panel.pytestmark  # skipped without chromium, with the same timeout


@pytest.fixture
async def jobd(tmp_path: Path) -> AsyncIterator[Running]:
    settings = from_dict(
        {
            "storage": {"db": str(tmp_path / "jobd.db")},
            "server": {"port": 0},
            "schedules": [
                {
                    "name": "nightly-report-wake",
                    "cron": "0 2 * * *",
                    "job_type": "REGISTRY",
                    "job_sub_type": "REGISTRY_WAKE_UP",
                    "user": "ops",
                }
            ],
        }
    )
    async with running(settings) as served:
        yield served


async def test_pause_and_resume_from_the_pools_page(browser: Browser, jobd: Running) -> None:
    page = await browser.new_page()
    await page.goto(f"{jobd.url}/ui/#/pools")
    email = page.locator('section[data-job-type="EMAIL"]')
    await email.get_by_role("button", name="Pause EMAIL").click()
    await expect(email.locator('[data-field="paused"]')).to_be_visible()
    session_id = await launch(jobd, "EMAIL", "EMAIL_WAKE_UP", {})
    await expect(email.locator('[data-field="waiting"]')).to_have_text("1")
    job = await jobd.server.store.get(session_id)
    assert job is not None and job.status.value == "PENDING"
    schedule = page.locator('#schedules tr[data-schedule="nightly-report-wake"]')
    await expect(schedule).to_contain_text("0 2 * * *")
    await expect(schedule.locator('[data-field="next_run"]')).not_to_have_text("—")
    await shot(page, "pools-paused")
    await email.get_by_role("button", name="Resume EMAIL").click()
    await expect(email.locator('[data-field="paused"]')).to_have_count(0)
    await expect(email.locator('[data-field="jobs_finished"]')).to_have_text("1")


async def test_a_reader_sees_a_pause_but_gets_no_button(browser: Browser, serve: Serve) -> None:
    token = "jobd_reader-token"
    jobd = await serve(
        auth={
            "mode": "token",
            "roles": {"read": "readers"},
            "tokens": [{"sha256": hash_token(token), "user": "rita", "roles": ["readers"]}],
        }
    )
    await jobd.server.flow.set_paused("EMAIL", True)
    page = await browser.new_page()
    await page.goto(f"{jobd.url}/ui/")
    await page.fill("#token-input", token)
    await page.click("text=Use token")
    await page.goto(f"{jobd.url}/ui/#/pools")
    email = page.locator('section[data-job-type="EMAIL"]')
    await expect(email.locator('[data-field="paused"]')).to_be_visible()
    await expect(email.get_by_role("button")).to_have_count(0)
