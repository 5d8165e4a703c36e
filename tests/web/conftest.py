"""Browser fixtures: Playwright driving Debian's Chromium against the live server, a fresh context a test."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

SCREENSHOTS = Path(__file__).parents[2] / "build" / "screenshots"  # kept by CI as artifacts
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling Google's hosts, which this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser journeys run on SQLite only: the pages call the same services whose queries the API and the
    page tests without a browser run on both databases, and a browser run costs much more than a request."""
    browser_on_postgres = [
        item for item in items if "page" in getattr(item, "fixturenames", ()) and "[postgres" in item.nodeid
    ]
    if browser_on_postgres:
        config.hook.pytest_deselected(items=browser_on_postgres)
        items[:] = [item for item in items if item not in browser_on_postgres]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    context = await browser.new_context(locale="en-US")
    yield context
    await context.close()


@pytest.fixture
async def page(context: BrowserContext) -> AsyncIterator[Page]:
    page = await context.new_page()
    page.set_default_timeout(10_000)
    failures: list[str] = []
    # A page answered 4xx on purpose (a form with errors) logs "Failed to load resource": not a failure;
    # a missing script, style or font is, and so is any script error or CSP violation.
    page.on(
        "console",
        lambda m: (
            failures.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda r: (
            failures.append(f"{r.status} {r.url}")
            if r.status >= 400 and r.request.resource_type != "document"
            else None
        ),
    )
    page.on("pageerror", lambda e: failures.append(str(e)))
    page.on(
        "request",
        lambda r: (
            None
            if urlsplit(r.url).hostname in ("127.0.0.1", "localhost") or r.url.startswith(("data:", "blob:"))
            else failures.append(f"request left localhost: {r.url}")
        ),
    )
    yield page
    assert failures == [], f"the page logged errors: {failures}"


async def screenshot(page: Page, name: str) -> None:
    """Save the whole page as build/screenshots/<name>.png (<page>-<lang>, e.g. renter-dashboard-ar)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
