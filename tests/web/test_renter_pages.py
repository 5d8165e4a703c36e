"""The renter's pages in a real browser: register, the key shown once, dashboard, signing in, statement."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.async_api import Page, expect

from tests.conftest import ADMIN_TOKEN, LiveServer
from tests.support.factories import credit, register_renter


async def register_in_browser(
    page: Page, live: LiveServer, *, name: str = "Nora", email: str = "nora@example.com"
) -> str:
    await page.goto(f"{live.url}/renter/register")
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Email").fill(email)
    await page.get_by_role("button", name="Create account").click()
    key = (await page.locator("#secret-value").inner_text()).strip()
    assert key.startswith("dc1-renter-")
    return key


class TestRegister:
    async def test_shows_the_key_once_and_signs_in(self, page: Page, live: LiveServer) -> None:
        key = await register_in_browser(page, live)
        await expect(page.get_by_role("alert")).to_contain_text("shown only once")
        async with httpx.AsyncClient(base_url=live.url) as http:
            me = await http.get("/api/renters/me", headers={"x-renter-key": key})
        assert me.status_code == 200
        await page.get_by_role("link", name="Go to the dashboard").click()
        await expect(page.get_by_test_id("balance")).to_have_text("SAR 0.00")
        cookies = {c["name"]: c for c in await page.context.cookies()}
        session = cookies["dcp_session"]
        assert session["httpOnly"] and session["sameSite"] == "Strict"
        assert key not in session["value"]
        assert await page.evaluate("() => JSON.stringify(localStorage) + document.cookie") in (
            "{}",
            "{}dcp_lang=en",
        )

    async def test_copy_button_copies_the_key(self, page: Page, live: LiveServer) -> None:
        await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        key = await register_in_browser(page, live)
        await page.get_by_role("button", name="Copy").click()
        await expect(page.get_by_role("button", name="Copied")).to_be_visible()
        assert await page.evaluate("() => navigator.clipboard.readText()") == key

    async def test_invalid_fields_are_named_and_nothing_is_created(
        self, page: Page, live: LiveServer
    ) -> None:
        await page.goto(f"{live.url}/renter/register")
        await page.get_by_label("Email").fill("not-an-email")
        await page.get_by_role("button", name="Create account").click()
        await expect(page.locator("#e-name")).to_have_text("This field is required.")
        await expect(page.locator("#e-email")).to_have_text("Enter a valid email address.")
        async with httpx.AsyncClient(base_url=live.url) as http:
            renters = await http.get("/api/admin/renters", headers={"x-admin-token": ADMIN_TOKEN})
        assert renters.json()["total"] == 0


class TestSignIn:
    async def test_sign_out_then_in_with_the_key(self, page: Page, live: LiveServer) -> None:
        key = await register_in_browser(page, live)
        await page.get_by_role("button", name="Sign out").click()
        await page.goto(f"{live.url}/renter")
        await expect(page).to_have_url(re.compile(r"/signin\?next=/renter$"))
        await page.get_by_label("API key or admin token").fill(key)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page).to_have_url(f"{live.url}/renter")
        await expect(page.get_by_role("heading", name="Hello, Nora")).to_be_visible()

    async def test_a_wrong_key_is_refused(self, page: Page, live: LiveServer) -> None:
        await page.goto(f"{live.url}/signin")
        await page.get_by_label("API key or admin token").fill("dc1-renter-" + "x" * 40)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("alert")).to_contain_text("not valid")

    async def test_rotating_the_key_ends_other_sessions(self, page: Page, live: LiveServer) -> None:
        await register_in_browser(page, live)
        other = await page.context.browser.new_context()  # a second browser signed in with the old key
        try:
            await other.add_cookies(await page.context.cookies())
            await page.goto(f"{live.url}/renter/key")
            await page.get_by_role("button", name="Rotate my key").click()
            new_key = (await page.locator("#secret-value").inner_text()).strip()
            await page.goto(f"{live.url}/renter")
            await expect(page.get_by_role("heading", name="Hello, Nora")).to_be_visible()
            stale = await other.new_page()
            await stale.goto(f"{live.url}/renter")
            assert "/signin" in stale.url
        finally:
            await other.close()
        async with httpx.AsyncClient(base_url=live.url) as http:
            assert (await http.get("/api/renters/me", headers={"x-renter-key": new_key})).status_code == 200


class TestStatement:
    async def test_lists_credits_and_exports_csv(self, page: Page, live: LiveServer) -> None:
        async with httpx.AsyncClient(base_url=live.url) as http:
            renter = await register_renter(http, name="Sara")
            await credit(http, {"x-admin-token": ADMIN_TOKEN}, renter, 2500)
        await page.goto(f"{live.url}/signin")
        await page.get_by_label("API key or admin token").fill(renter.key)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_test_id("balance")).to_have_text("SAR 25.00")
        await page.get_by_role("link", name="Statement").first.click()
        await expect(page.get_by_role("cell", name="Top-up")).to_be_visible()
        async with page.expect_download() as download_info:
            await page.get_by_role("link", name="Export CSV").click()
        download = await download_info.value
        text = Path(await download.path()).read_text(encoding="utf-8")  # noqa: ASYNC240
        assert "topup" in text and "2500" in text
