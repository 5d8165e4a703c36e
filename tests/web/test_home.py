"""The marketplace home page in a real browser: live GPUs that appear without a reload, both languages, and a
phone-sized screen."""

from __future__ import annotations

import httpx
from playwright.async_api import Page, expect

from tests.conftest import LiveServer
from tests.support.factories import online_provider
from tests.web.conftest import screenshot


async def test_a_new_gpu_appears_without_a_reload(page: Page, live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url) as http:
        await online_provider(http, name="Riyadh Node", gpu_name="NVIDIA RTX 4090", gpu_vram_mib=24576)
    await page.clock.install()
    await page.goto(live.url)
    rows = page.locator("#market-rows tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("NVIDIA RTX 4090")
    await expect(rows.first).to_contain_text("24 GB")
    await expect(rows.first).to_contain_text("Online")
    async with httpx.AsyncClient(base_url=live.url) as http:
        await online_provider(http, name="Jeddah Node", gpu_name="NVIDIA A100", gpu_vram_mib=81920)
    await page.clock.run_for(11_000)  # the table refreshes itself every 10 s
    await expect(rows).to_have_count(2)
    await screenshot(page, "home-en")


async def test_arabic_and_phone_sized(page: Page, live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url) as http:
        await online_provider(http, name="Dammam Node", gpu_name="NVIDIA RTX 4090", gpu_vram_mib=24576)
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto(f"{live.url}/lang/ar")
    assert await page.locator("html").get_attribute("dir") == "rtl"
    await expect(page.locator("#market-rows tr").first).to_contain_text("متصل")
    await expect(page.locator("#market-rows tr").first).to_contain_text("٢٤ غيغابايت")
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    await screenshot(page, "home-ar-phone")
