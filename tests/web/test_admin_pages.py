"""The admin pages in a real browser, in English and Arabic: the dashboard and its charts, approving
providers, crediting renters once, approving, paying and rejecting withdrawals; and who may open them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from playwright.async_api import Page, expect

from dcp.admin import service
from dcp.config import Settings
from dcp.db.engine import Database
from dcp.kit.clock import ManualClock
from dcp.web.i18n import Lang, Locale, catalog
from tests.conftest import ADMIN_TOKEN, LiveServer
from tests.support.factories import (
    Account,
    credit,
    funded_renter,
    heartbeat,
    llm_job,
    online_provider,
    register_provider,
    register_renter,
    settled_work,
    submit,
)
from tests.support.provider_client import TestProvider
from tests.web.conftest import screenshot

LANGS: list[Lang] = ["en", "ar"]
ADMIN = {"x-admin-token": ADMIN_TOKEN}
IBAN = "SA0380000000608010167519"
ADMIN_PAGES = ["/admin", "/admin/providers", "/admin/renters", "/admin/withdrawals"]


def t(lang: Lang, key: str, **values: object) -> str:
    return Locale(lang, "Asia/Riyadh").t(key, **values)


@pytest.fixture
async def http(live: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.url) as client:
        yield client


async def sign_in_as_admin(page: Page, live: LiveServer, lang: Lang) -> None:
    await page.context.add_cookies([{"name": "dcp_lang", "value": lang, "url": live.url}])
    await page.goto(f"{live.url}/signin")
    await page.get_by_label(t(lang, "common.key_label")).fill(ADMIN_TOKEN)
    await page.get_by_role("button", name=t(lang, "common.sign_in")).click()
    await expect(page).to_have_url(f"{live.url}/admin")


async def check_language(page: Page, lang: Lang) -> None:
    """Arabic pages are right-to-left and show none of the English catalog's texts."""
    await expect(page.locator("html")).to_have_attribute("dir", "rtl" if lang == "ar" else "ltr")
    if lang == "en":
        return
    english = {text for key, text in catalog("en").items() if catalog("ar")[key] != text and len(text) > 3}
    visible = await page.locator("body").inner_text()
    assert [line.strip() for line in re.split(r"[\n\t]", visible) if line.strip() in english] == []


async def withdrawal_of(http: httpx.AsyncClient, database: Database, clock: ManualClock) -> Account:
    """A provider that earned 7500 halala and asked for 5000 of it to be paid to its IBAN."""
    renter = await funded_renter(http, ADMIN, amount=20_000)
    provider = await register_provider(http, name="Node Jeddah")
    await settled_work(
        database,
        renter_id=renter.id,
        provider_id=provider.id,
        held=10_000,
        cost=10_000,
        ref=f"job-for-{provider.id}",
        now=clock.now(),
    )
    asked = await http.post(
        "/api/providers/withdrawals",
        headers=provider.provider_headers,
        json={"amount_halala": 5000, "iban": IBAN},
    )
    assert asked.status_code == 201, asked.text
    return provider


async def the_withdrawal(http: httpx.AsyncClient) -> dict[str, object]:
    listed = (await http.get("/api/admin/withdrawals", headers=ADMIN)).json()
    (only,) = listed["all"]
    return dict(only)


@pytest.mark.parametrize("lang", LANGS)
class TestDashboard:
    async def test_shows_the_apis_numbers_charts_and_recent_activity(
        self,
        page: Page,
        live: LiveServer,
        http: httpx.AsyncClient,
        database: Database,
        clock: ManualClock,
        lang: Lang,
    ) -> None:
        await online_provider(http, name="Node Riyadh", gpu_name="NVIDIA RTX 4090")
        await register_provider(http, name="Node Dammam", gpu_model="RTX 3090")
        await withdrawal_of(http, database, clock)
        await register_renter(http, name="Sara")
        await sign_in_as_admin(page, live, lang)
        stats = (await http.get("/api/admin/dashboard", headers=ADMIN)).json()["stats"]
        locale = Locale(lang, "Asia/Riyadh")
        for name, value in stats.items():
            if name != "timestamp":
                shown = locale.sar(value) if name.endswith("_halala") else locale.number(value)
                await expect(page.get_by_test_id(f"stat-{name}")).to_have_text(shown)
        assert stats["total_revenue_halala"] == 10_000 and stats["total_providers"] == 3
        charts = page.locator(".chart svg")
        await expect(charts).to_have_count(3)
        await expect(charts.nth(1)).to_contain_text(locale.number(100))  # today's SAR 100 tops its axis
        await expect(page.get_by_role("img", name=t(lang, "admin.chart_gpus"))).to_be_visible()
        heartbeats = page.locator(
            "section", has=page.get_by_role("heading", name=t(lang, "admin.recent_heartbeats"))
        )
        await expect(heartbeats.get_by_role("row", name=re.compile("Node Riyadh"))).to_be_visible()
        signups = page.locator(
            "section", has=page.get_by_role("heading", name=t(lang, "admin.recent_signups"))
        )
        await expect(signups.get_by_role("row", name=re.compile("Sara"))).to_be_visible()
        await check_language(page, lang)
        await screenshot(page, f"admin-dashboard-{lang}")


async def test_the_charts_count_each_day_in_the_operators_time_zone(
    client: httpx.AsyncClient, database: Database, clock: ManualClock, settings: Settings
) -> None:
    """A job run five minutes before midnight in Riyadh counts for that day, one after it for the next."""
    midnight = service.start_of_day(clock.now(), settings.timezone)
    clock.advance(seconds=(midnight - clock.now()).total_seconds() - 300)
    provider = await online_provider(client)
    renter = await funded_renter(client, ADMIN)
    await submit(client, renter, llm_job())
    daemon = TestProvider(client, provider)
    leased = await daemon.claim()
    assert leased is not None and (await daemon.start(leased)).status_code == 200
    clock.advance(seconds=60)
    assert (await daemon.result(leased, result={"response": "Riyadh"}, execution_time_ms=60_000)).is_success
    clock.advance(seconds=300)
    await heartbeat(client, provider)
    assert (await submit(client, renter, llm_job(), **{"Idempotency-Key": "second"})).is_success
    async with database.reader() as session:
        days = await service.daily_activity(session, settings=settings, now=clock.now())
    stats = (await client.get("/api/admin/dashboard", headers=ADMIN)).json()["stats"]
    assert len(days) == service.ACTIVITY_DAYS and days[-1].day == midnight.date()
    assert days[-2].day == midnight.date() - timedelta(days=1)
    assert (days[-2].jobs_submitted, days[-2].jobs_completed) == (1, 1)
    assert (days[-1].jobs_submitted, days[-1].jobs_completed) == (1, 0)
    assert days[-2].revenue_halala == stats["total_revenue_halala"] > 0 and days[-1].revenue_halala == 0
    assert days[-2].fees_halala == stats["total_dc1_fees_halala"] > 0
    assert sum(day.jobs_submitted for day in days[:-2]) == 0


@pytest.mark.parametrize("lang", LANGS)
class TestProviders:
    async def test_search_then_approve_a_pending_provider_and_suspend_it(
        self, page: Page, live: LiveServer, http: httpx.AsyncClient, settings: Settings, lang: Lang
    ) -> None:
        settings.provider_auto_approve = False
        farm = await register_provider(http, name="Dammam Farm", email="farm@dammam.sa")
        await register_provider(http, name="Other Node")
        await sign_in_as_admin(page, live, lang)
        await page.goto(f"{live.url}/admin/providers?approval_status=pending")
        await page.get_by_placeholder(t(lang, "admin.search_providers_hint")).fill("dammam")
        await page.get_by_role("button", name=t(lang, "admin.search_button")).click()
        rows = page.locator("tbody tr")
        await expect(rows).to_have_count(1)
        await rows.get_by_role("button", name=t(lang, "admin.approve")).click()
        await expect(page.get_by_role("status")).to_have_text(t(lang, "admin.done_provider_approved"))
        await expect(page).to_have_url(re.compile(r"q=dammam"))
        one = (await http.get(f"/api/admin/providers/{farm.id}", headers=ADMIN)).json()["provider"]
        assert one["approval_status"] == "approved"
        await page.goto(f"{live.url}/admin/providers?q=dammam")
        await page.locator("tbody tr").get_by_role("button", name=t(lang, "admin.suspend")).click()
        await expect(page.get_by_role("status")).to_have_text(t(lang, "admin.done_provider_suspended"))
        one = (await http.get(f"/api/admin/providers/{farm.id}", headers=ADMIN)).json()["provider"]
        assert one["approval_status"] == "suspended"
        await page.goto(f"{live.url}/admin/providers")
        await expect(page.locator("tbody tr")).to_have_count(2)
        await check_language(page, lang)
        await screenshot(page, f"admin-providers-{lang}")


async def balance_of(http: httpx.AsyncClient, renter: Account) -> int:
    answer = await http.get("/api/renters/balance", headers=renter.renter_headers)
    return int(answer.json()["balance_halala"])


@pytest.mark.parametrize("lang", LANGS)
class TestRenters:
    async def test_a_credit_from_the_form_lands_once_however_often_it_is_sent(
        self, page: Page, live: LiveServer, http: httpx.AsyncClient, lang: Lang
    ) -> None:
        renter = await register_renter(http, name="Acme AI", organization="Acme")
        await register_renter(http, name="Other", organization="Elsewhere")
        await sign_in_as_admin(page, live, lang)
        await page.goto(f"{live.url}/admin/renters?q=acme")
        await page.get_by_role("link", name=t(lang, "admin.manage"), exact=True).click()
        await page.get_by_label(t(lang, "admin.amount_sar")).fill("12.50")
        await page.get_by_label(t(lang, "admin.reason")).fill("bank transfer 77")
        form = {
            name: await page.locator(f"input[name={name}]").first.input_value()
            for name in ("csrf", "idempotency_key")
        }
        await page.get_by_role("button", name=t(lang, "admin.credit_button")).click()
        await expect(page.get_by_role("status")).to_have_text(t(lang, "admin.done_credited"))
        await expect(page.get_by_test_id("balance")).to_have_text(Locale(lang, "Asia/Riyadh").sar(1250))
        assert await balance_of(http, renter) == 1250
        # The same rendered form sent again (a double click, a resent request) is the same credit.
        again = await page.request.post(
            f"{live.url}/admin/renters/{renter.id}/credit",
            form={**form, "amount_sar": "12.50", "reason": "bank transfer 77"},
        )
        assert again.ok and t(lang, "admin.done_credit_repeat") in await again.text()
        assert await balance_of(http, renter) == 1250
        await check_language(page, lang)
        await screenshot(page, f"admin-renter-{lang}")

    async def test_bad_values_are_named_and_credit_nothing(
        self, page: Page, live: LiveServer, http: httpx.AsyncClient, lang: Lang
    ) -> None:
        renter = await register_renter(http)
        locale = Locale(lang, "Asia/Riyadh")
        out_of_range = t(lang, "admin.err_amount_range", min=locale.sar(1), max=locale.sar(100_000_000))
        await sign_in_as_admin(page, live, lang)
        await page.goto(f"{live.url}/admin/renters/{renter.id}")
        for amount, message in [
            ("ten", t(lang, "admin.err_amount")),
            ("0.005", t(lang, "admin.err_amount")),
            ("1,2,3", t(lang, "admin.err_amount")),  # no thousands: was credited as 123 SAR
            ("-5", t(lang, "admin.err_amount")),
            ("0", out_of_range),
            ("99999999999", out_of_range),  # said 'enter an amount such as 25' before
            ("", t(lang, "forms.err_required")),
        ]:
            await page.get_by_label(t(lang, "admin.amount_sar")).fill(amount)
            await page.get_by_role("button", name=t(lang, "admin.credit_button")).click()
            await expect(page.locator("#e-amount_sar")).to_have_text(message)
            await expect(page.locator("#e-reason")).to_have_text(t(lang, "forms.err_required"))
        assert await balance_of(http, renter) == 0
        await check_language(page, lang)

    async def test_suspend_and_activate(
        self, page: Page, live: LiveServer, http: httpx.AsyncClient, lang: Lang
    ) -> None:
        renter = await funded_renter(http, ADMIN, amount=500)
        await sign_in_as_admin(page, live, lang)
        await page.goto(f"{live.url}/admin/renters/{renter.id}")
        await page.get_by_role("button", name=t(lang, "admin.suspend")).click()
        await expect(page.get_by_role("status")).to_have_text(t(lang, "admin.done_renter_suspended"))
        assert (await http.get("/api/renters/me", headers=renter.renter_headers)).status_code == 403
        await page.get_by_role("button", name=t(lang, "admin.activate")).click()
        await expect(page.get_by_role("status")).to_have_text(t(lang, "admin.done_renter_active"))
        assert (await http.get("/api/renters/me", headers=renter.renter_headers)).status_code == 200


@pytest.mark.parametrize("lang", LANGS)
class TestWithdrawals:
    async def test_approve_then_mark_paid(
        self,
        page: Page,
        live: LiveServer,
        http: httpx.AsyncClient,
        database: Database,
        clock: ManualClock,
        lang: Lang,
    ) -> None:
        await withdrawal_of(http, database, clock)
        await sign_in_as_admin(page, live, lang)
        await page.goto(f"{live.url}/admin/withdrawals?status=pending")
        row = page.locator("tbody tr")
        await expect(row).to_contain_text("SA03 **** 7519")
        await expect(row).to_contain_text("Node Jeddah")
        assert IBAN not in await page.content()
        await check_language(page, lang)
        await screenshot(page, f"admin-withdrawals-{lang}")
        await row.get_by_role("link", name=t(lang, "admin.review")).click()
        await expect(page.get_by_test_id("iban")).to_have_text(IBAN)  # whole while it is to be paid
        await page.get_by_role("button", name=t(lang, "admin.approve")).click()
        await expect(page.get_by_role("status")).to_have_text(t(lang, "admin.done_withdrawal_approved"))
        await page.get_by_role("button", name=t(lang, "admin.paid_button")).click()
        await expect(page.locator("#e-reference")).to_have_text(t(lang, "forms.err_required"))
        await page.get_by_label(t(lang, "admin.reference")).fill("SARIE-2024-0042")
        await page.get_by_role("button", name=t(lang, "admin.paid_button")).click()
        await expect(page.get_by_role("status")).to_have_text(t(lang, "admin.done_withdrawal_paid"))
        await expect(page.get_by_test_id("withdrawal-status")).to_have_text(t(lang, "common.status_paid"))
        await expect(page.get_by_test_id("iban")).to_have_text("SA03 **** 7519")  # masked once paid
        paid = await the_withdrawal(http)
        assert paid["status"] == "paid" and paid["payout_reference"] == "SARIE-2024-0042"
        await check_language(page, lang)

    async def test_reject_returns_the_money(
        self,
        page: Page,
        live: LiveServer,
        http: httpx.AsyncClient,
        database: Database,
        clock: ManualClock,
        lang: Lang,
    ) -> None:
        provider = await withdrawal_of(http, database, clock)
        await sign_in_as_admin(page, live, lang)
        withdrawal = await the_withdrawal(http)
        await page.goto(f"{live.url}/admin/withdrawals/{withdrawal['id']}")
        await page.get_by_label(t(lang, "admin.reject_reason")).fill("The IBAN belongs to someone else")
        await page.get_by_role("button", name=t(lang, "admin.reject_button")).click()
        await expect(page.get_by_role("status")).to_have_text(t(lang, "admin.done_withdrawal_rejected"))
        assert (await the_withdrawal(http))["status"] == "rejected"
        earnings = (await http.get("/api/providers/earnings", headers=provider.provider_headers)).json()
        assert earnings["earnings_halala"] == 7500 and earnings["payout_pending_halala"] == 0
        await expect(page.get_by_role("button", name=t(lang, "admin.approve"))).to_have_count(0)
        # A form left open in another tab can no longer approve it.
        csrf = await page.locator("input[name=csrf]").first.input_value()
        stale = await page.request.post(
            f"{live.url}/admin/withdrawals/{withdrawal['id']}/approve", form={"csrf": csrf}
        )
        expected = {"en": "Cannot approve a withdrawal that is rejected", "ar": t(lang, "errors.WrongState")}
        assert stale.status == 409 and expected[lang] in await stale.text()
        assert (await the_withdrawal(http))["status"] == "rejected"


class TestAccess:
    async def test_a_renter_signed_in_is_sent_to_sign_in(
        self, page: Page, live: LiveServer, http: httpx.AsyncClient
    ) -> None:
        renter = await register_renter(http)
        await page.goto(f"{live.url}/signin")
        await page.get_by_label(t("en", "common.key_label")).fill(renter.key)
        await page.get_by_role("button", name=t("en", "common.sign_in")).click()
        await expect(page).to_have_url(f"{live.url}/renter")
        for path in ADMIN_PAGES:
            await page.goto(f"{live.url}{path}")
            await expect(page).to_have_url(f"{live.url}/signin?next={path}")

    async def test_actions_need_the_admin_and_a_csrf_token(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        settings.provider_auto_approve = False
        provider = await register_provider(client)
        url = f"/admin/providers/{provider.id}/approve"
        anonymous = await client.post(url, data={"csrf": await _csrf(client)})
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/signin")
        await _admin_session(client)
        assert (await client.post(url, data={})).status_code == 403
        approved = await client.post(url, data={"csrf": await _csrf(client), "next": "https://evil.example/"})
        assert approved.status_code == 303 and approved.headers["location"].startswith("/admin/providers?")
        one = (await client.get(f"/api/admin/providers/{provider.id}", headers=ADMIN)).json()
        assert one["provider"]["approval_status"] == "approved"
        audit = (await client.get("/api/admin/audit", headers=ADMIN)).json()["events"]
        assert [(e["actor"], e["action"], e["status"]) for e in audit[:1]] == [("admin", f"POST {url}", 303)]


async def _csrf(client: httpx.AsyncClient, path: str = "/signin") -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', (await client.get(path)).text)
    assert found
    return found.group(1)


async def _admin_session(client: httpx.AsyncClient) -> None:
    signed = await client.post("/signin", data={"csrf": await _csrf(client), "key": ADMIN_TOKEN})
    assert signed.status_code == 303 and signed.headers["location"] == "/admin"


async def test_list_pages_keep_their_search_and_filter_from_page_to_page(client: httpx.AsyncClient) -> None:
    for n in range(3):
        await register_renter(client, name=f"Acme {n}", organization="Acme")
    await register_renter(client, name="Other", organization="Elsewhere")
    await _admin_session(client)
    first = await client.get("/admin/renters", params={"q": "acme", "status": "active", "limit": 2})
    assert first.text.count("/admin/renters/") == 2 and "Other" not in first.text
    next_link = re.search(r'href="(\?[^"]*offset=2[^"]*)"', first.text)
    assert next_link is not None
    second = await client.get("/admin/renters" + next_link.group(1).replace("&amp;", "&"))
    assert second.text.count("/admin/renters/") == 1 and "Acme 0" in second.text
    assert "Other" not in second.text


async def test_every_admin_page_in_arabic_is_rtl_with_no_english_left(
    client: httpx.AsyncClient, database: Database, clock: ManualClock
) -> None:
    renter = await funded_renter(client, ADMIN, amount=5000)
    await withdrawal_of(client, database, clock)
    await credit(client, ADMIN, renter, 100)
    await _admin_session(client)
    withdrawal = await the_withdrawal(client)
    client.cookies.set("dcp_lang", "ar")
    english = {text for key, text in catalog("en").items() if catalog("ar")[key] != text and len(text) > 3}
    for path in [*ADMIN_PAGES, f"/admin/renters/{renter.id}", f"/admin/withdrawals/{withdrawal['id']}"]:
        answer = await client.get(path)
        assert answer.status_code == 200, path
        assert '<html lang="ar" dir="rtl">' in answer.text
        assert " style=" not in answer.text and "<script>" not in answer.text
        visible = re.sub(r"<[^>]+>", "\n", re.sub(r"<(script|style)\b.*?</\1>", "", answer.text, flags=re.S))
        assert [line.strip() for line in visible.splitlines() if line.strip() in english] == [], path


@pytest.mark.parametrize("lang", LANGS)
async def test_every_admin_page_fits_a_phone(
    page: Page, live: LiveServer, http: httpx.AsyncClient, database: Database, clock: ManualClock, lang: Lang
) -> None:
    await online_provider(http, name="Node with a rather long name for a phone screen")
    await withdrawal_of(http, database, clock)
    renter = await funded_renter(http, ADMIN)
    await page.set_viewport_size({"width": 390, "height": 844})
    await sign_in_as_admin(page, live, lang)
    withdrawal = await the_withdrawal(http)
    for path in [*ADMIN_PAGES, f"/admin/renters/{renter.id}", f"/admin/withdrawals/{withdrawal['id']}"]:
        await page.goto(f"{live.url}{path}")
        overflow = await page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px on a phone"
    await page.goto(f"{live.url}/admin")
    await screenshot(page, f"admin-dashboard-{lang}-phone")
