"""A renter's job journeys in a real browser, with a real daemon running the real small models on CPU:
LLM text arriving live, an image shown when done, form errors in both languages, cancelling, and others'
jobs unseen."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect

from dcp.kit.clock import ManualClock
from tests.conftest import ADMIN_TOKEN, LiveServer
from tests.support.daemon import running_daemon
from tests.support.factories import Account, credit, online_provider, register_renter, waiting_copies
from tests.web.conftest import screenshot


async def sign_in(page: Page, live: LiveServer, key: str) -> None:
    await page.goto(f"{live.url}/signin")
    await page.locator("#f-key").fill(key)
    await page.locator("form.form button[type=submit]").click()
    await page.wait_for_url(f"{live.url}/renter")


async def funded(live: LiveServer, amount: int = 50_000) -> Account:
    async with httpx.AsyncClient(base_url=live.url) as http:
        renter = await register_renter(http, name="Huda")
        await credit(http, {"x-admin-token": ADMIN_TOKEN}, renter, amount)
    return renter


@pytest.fixture
async def daemon(live: LiveServer, tmp_path: Path) -> AsyncIterator[Account]:
    """A real provider daemon process connected to the live server, online before the test starts."""
    async with running_daemon(live.url, tmp_path) as provider:
        yield provider


async def _while_running(live: LiveServer, renter: Account, job_id: str, act: Callable[[], None]) -> None:
    """Do ``act`` once, the moment the job is running on its provider."""
    async with httpx.AsyncClient(base_url=live.url) as http:
        for _ in range(3000):
            job = (await http.get(f"/api/jobs/{job_id}", headers=renter.renter_headers)).json()["job"]
            if job["status"] == "running":
                act()
                return
            assert job["status"] in ("pending", "assigned"), job
            await asyncio.sleep(0.02)
    raise AssertionError("the job never started")


class TestRealDaemon:
    async def test_llm_text_arrives_live_the_cost_settles_and_the_provider_is_paid(
        self, page: Page, live: LiveServer, daemon: Account, clock: ManualClock
    ) -> None:
        renter = await funded(live)
        await sign_in(page, live, renter.key)
        await page.goto(f"{live.url}/renter/jobs/new?type=llm_inference")
        await page.get_by_label("Prompt").fill("The capital of Saudi Arabia is")
        await page.get_by_label("Maximum tokens").fill("96")
        await page.get_by_role("button", name="Submit job").click()
        await expect(page.get_by_role("heading", name="Job")).to_be_visible()
        job_id = page.url.rsplit("/", 1)[1]
        await _while_running(live, renter, job_id, lambda: clock.advance(seconds=30))  # 30 s of server time
        await expect(page.get_by_test_id("job-status")).to_have_text("Completed", timeout=90_000)
        text = await page.get_by_test_id("llm-output").inner_text()
        assert len(text.strip()) > 0
        await expect(page.get_by_test_id("cost-charged")).not_to_have_text("SAR 0.00")
        await screenshot(page, "renter-job-llm-en")
        await page.get_by_role("button", name="Sign out").click()
        await page.goto(f"{live.url}/signin")
        await page.locator("#f-key").fill(daemon.key)
        await page.locator("form.form button[type=submit]").click()
        await page.wait_for_url(f"{live.url}/provider")
        await expect(page.get_by_role("row", name=job_id)).to_contain_text("Completed")
        async with httpx.AsyncClient(base_url=live.url) as http:
            earned = (await http.get("/api/providers/earnings", headers=daemon.provider_headers)).json()
        assert earned["total_earned_halala"] > 0

    async def test_the_image_is_shown_when_done_in_arabic(
        self, page: Page, live: LiveServer, daemon: Account
    ) -> None:
        renter = await funded(live)
        await page.goto(f"{live.url}/lang/ar")
        await sign_in(page, live, renter.key)
        await page.goto(f"{live.url}/renter/jobs/new?type=image_generation")
        assert await page.locator("html").get_attribute("dir") == "rtl"
        await page.get_by_label("الوصف النصي").fill("a red circle")
        sixty_four, four = "\u0666\u0664", "\u0664"  # typed in Arabic-Indic digits, as the page reads them
        await page.get_by_label("العرض (بكسل)").fill(sixty_four)
        await page.get_by_label("الارتفاع (بكسل)").fill(sixty_four)
        await page.get_by_label("الخطوات").fill(four)
        await page.get_by_role("button", name="إرسال المهمة").click()
        image = page.get_by_test_id("image-output")
        await expect(image).to_be_visible(timeout=90_000)
        assert await image.evaluate("img => img.naturalWidth") == 64
        await screenshot(page, "renter-job-image-ar")


class TestForm:
    async def test_errors_are_per_field_and_in_arabic(self, page: Page, live: LiveServer) -> None:
        renter = await funded(live)
        await page.goto(f"{live.url}/lang/ar")
        await sign_in(page, live, renter.key)
        await page.goto(f"{live.url}/renter/jobs/new?type=llm_inference")
        await page.get_by_label("الحد الأقصى للرموز").fill("99999")
        await page.get_by_role("button", name="إرسال المهمة").click()
        await expect(page.locator("#e-prompt")).to_have_text("هذا الحقل مطلوب.")
        await expect(page.locator("#e-max_tokens")).to_have_text("يجب ألا يزيد عن ٤٬٠٩٦.")
        await screenshot(page, "renter-new-job-ar")
        async with httpx.AsyncClient(base_url=live.url) as http:
            jobs = await http.get("/api/jobs/history", headers=renter.renter_headers)
        assert jobs.json()["total"] == 0

    async def test_no_capacity_says_so_and_holds_nothing(self, page: Page, live: LiveServer) -> None:
        renter = await funded(live, amount=10_000)
        await sign_in(page, live, renter.key)
        await page.goto(f"{live.url}/renter/jobs/new?type=llm_inference")
        await page.get_by_label("Prompt").fill("hello")
        await page.get_by_role("button", name="Submit job").click()
        await expect(page.get_by_role("alert")).to_be_visible()
        async with httpx.AsyncClient(base_url=live.url) as http:
            balance = (await http.get("/api/renters/balance", headers=renter.renter_headers)).json()
        assert balance["held_halala"] == 0 and balance["balance_halala"] == 10_000


class TestJobPage:
    async def test_cancel_refunds_a_queued_job(self, page: Page, live: LiveServer) -> None:
        renter = await funded(live)
        async with httpx.AsyncClient(base_url=live.url) as http:
            await online_provider(http, name="Dammam")
            submitted = await http.post(
                "/api/jobs/submit",
                headers=renter.renter_headers,
                json={"job_type": "llm_inference", "duration_minutes": 3, "params": {"prompt": "hi"}},
            )
        job_id = submitted.json()["job"]["job_id"]
        await sign_in(page, live, renter.key)
        await page.goto(f"{live.url}/renter/jobs/{job_id}")
        await expect(page.get_by_test_id("job-status")).not_to_have_text("Completed")
        await page.get_by_role("button", name="Cancel job").click()
        await expect(page.get_by_test_id("job-status")).to_have_text("Cancelled")
        async with httpx.AsyncClient(base_url=live.url) as http:
            balance = (await http.get("/api/renters/balance", headers=renter.renter_headers)).json()
        assert balance == {**balance, "held_halala": 0, "balance_halala": 50_000}

    async def test_the_queue_position_and_a_far_one(self, page: Page, live: LiveServer) -> None:
        renter = await funded(live)
        job = {"job_type": "llm_inference", "duration_minutes": 1, "params": {"prompt": "hi"}}
        async with httpx.AsyncClient(base_url=live.url) as http:
            await online_provider(http, name="Tabuk")  # one slot: the first job takes it
            submitted = [
                (await http.post("/api/jobs/submit", headers=renter.renter_headers, json=job)).json()["job"]
                for _ in range(2)
            ]
            await waiting_copies(live.app.state.db, submitted[1]["job_id"], count=999)
            far = await http.post("/api/jobs/submit", headers=renter.renter_headers, json=job)
        await sign_in(page, live, renter.key)
        await page.goto(f"{live.url}/renter/jobs/{submitted[1]['job_id']}")
        await expect(page.get_by_text("Position in the queue: 1", exact=True)).to_be_visible()
        await page.goto(f"{live.url}/renter/jobs/{far.json()['job']['job_id']}")
        await expect(page.get_by_text("Position in the queue: 1,001 or later")).to_be_visible()

    async def test_another_renters_job_is_not_found(self, page: Page, live: LiveServer) -> None:
        owner = await funded(live)
        async with httpx.AsyncClient(base_url=live.url) as http:
            other = await register_renter(http, name="Other", email="other@example.com")
            await online_provider(http, name="Abha")
            submitted = await http.post(
                "/api/jobs/submit",
                headers=owner.renter_headers,
                json={"job_type": "llm_inference", "duration_minutes": 1, "params": {"prompt": "x"}},
            )
        job_id = submitted.json()["job"]["job_id"]
        await sign_in(page, live, other.key)
        response = await page.goto(f"{live.url}/renter/jobs/{job_id}")
        assert response is not None and response.status == 404
        events = await page.request.get(f"{live.url}/renter/jobs/{job_id}/events")
        assert events.status == 404
