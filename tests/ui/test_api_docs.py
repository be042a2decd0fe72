"""`/docs` and `/redoc` in a real browser: Swagger UI and ReDoc render jobd's OpenAPI document
from jobd's own assets (nothing is fetched from elsewhere), and Swagger UI can call the API."""

from __future__ import annotations

from playwright.async_api import Browser, Page, Route, expect

from tests.ui.test_panel import Serve, pytestmark, shot

__all__ = ["pytestmark"]


async def fetched_elsewhere(page: Page, base_url: str) -> list[str]:
    """Record every request the page sends anywhere but `base_url` (answering it empty, so a
    page that depends on one would show it); the list fills in as the page loads."""
    foreign: list[str] = []

    async def intercept(route: Route) -> None:
        if route.request.url.startswith((base_url, "data:", "blob:")):
            await route.continue_()
        else:
            foreign.append(route.request.url)
            await route.fulfill(status=200, body="")

    await page.route("**/*", intercept)
    return foreign


async def test_swagger_ui_renders_and_calls_the_api(browser: Browser, serve: Serve) -> None:
    jobd = await serve()
    page = await browser.new_page()
    foreign = await fetched_elsewhere(page, jobd.url)
    await page.goto(jobd.url + "/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("provena-jobd Job API")
    for path in ("/jobs/admin/launch", "/admin/pool", "/jobs/user/workflow"):
        await expect(page.locator(f'.opblock-summary-path[data-path="{path}"]')).to_be_visible()
    health = page.locator(".opblock-get").filter(
        has=page.locator('.opblock-summary-path[data-path="/"]')
    )
    await health.locator(".opblock-summary").click()
    await health.get_by_role("button", name="Try it out").click()
    await health.get_by_role("button", name="Execute").click()
    await expect(health.locator(".live-responses-table")).to_contain_text(
        "Health check successful."
    )
    await shot(page, "api-docs")
    assert foreign == []


async def test_redoc_renders_from_jobd_alone(browser: Browser, serve: Serve) -> None:
    jobd = await serve()
    page = await browser.new_page()
    foreign = await fetched_elsewhere(page, jobd.url)
    await page.goto(jobd.url + "/redoc")
    await expect(page.locator("h1").first).to_contain_text("provena-jobd Job API")
    await expect(page.get_by_text("/jobs/admin/launch").first).to_be_attached()
    await shot(page, "api-redoc")
    assert foreign == []
