"""A page taller than the window opens at its top: the top bar in view, focus on the page.

The router moves focus to `<main>` on every page so screen readers start there; that must not
scroll the top bar (provena-jobd / Jobs / Pools) out of view. Screenshots go under
test-output/ui/, like tests/ui/test_panel.py.
"""

from __future__ import annotations

from playwright.async_api import Browser, Page, ViewportSize, expect

from tests.ui.test_panel import Serve, launch, pytestmark, shot

__all__ = ["pytestmark"]

SHORT: ViewportSize = {"width": 1280, "height": 400}


async def assert_at_top(page: Page, what: str) -> None:
    """Focus is on the page's main view, the page could scroll, and it is not scrolled."""
    await expect(page.locator("#view")).to_be_focused()
    scroll_y, height = await page.evaluate(
        "() => [window.scrollY, document.documentElement.scrollHeight]"
    )
    assert height > SHORT["height"], f"{what}: {height} px fits the window; nothing to scroll"
    assert scroll_y == 0, f"{what} opened scrolled down by {scroll_y} px"
    await expect(page.locator("header.top")).to_be_in_viewport(ratio=1)
    await expect(page.get_by_role("navigation", name="Main")).to_be_visible()


async def test_a_long_page_opens_at_its_top_with_the_top_bar_in_view(
    browser: Browser, serve: Serve
) -> None:
    jobd = await serve()
    jobs = [await launch(jobd, "EMAIL", "EMAIL_WAKE_UP", {}) for _ in range(12)]
    pages = {
        "the job list": ("#/jobs", f'tr[data-session-id="{jobs[0]}"]'),
        "a job's details": (f"#/jobs/{jobs[0]}", "#timeline li"),
        "the pools": ("#/pools", 'section[data-job-type="EMAIL"]'),
    }
    for what, (route, content) in pages.items():
        page = await browser.new_page(viewport=SHORT)  # a fresh tab: a first load
        await page.goto(f"{jobd.url}/ui/{route}")
        await expect(page.locator(content).first).to_be_visible()
        await assert_at_top(page, what)
        await shot(page, "page-top-" + route.strip("#/").split("/")[0])
        await page.close()

    # Following a link from the foot of a scrolled list opens the job at the top as well.
    page = await browser.new_page(viewport=SHORT)
    await page.goto(f"{jobd.url}/ui/#/jobs")
    last_row = page.locator(f'tr[data-session-id="{jobs[0]}"]')
    await expect(last_row).to_be_visible()
    scrolled = await page.evaluate(
        "() => { scrollTo(0, document.documentElement.scrollHeight); return window.scrollY; }"
    )
    assert scrolled > 0
    await last_row.locator("a").first.click()
    await expect(page.locator("#timeline li").first).to_be_visible()
    await assert_at_top(page, "a job opened from the list's foot")
