"""The provider's pages in a real browser, in English and Arabic: register with the install commands, the
dashboard going online with telemetry charts, pause and resume, earnings from a finished job, withdrawals."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.async_api import Page, expect

from dcp.db.engine import Database
from dcp.kit.clock import ManualClock
from dcp.models import ProviderHeartbeat
from dcp.providers.downloads import install_command
from dcp.web.forms import halala_of
from dcp.web.i18n import Lang, Locale, catalog
from dcp.web.provider_dashboard import telemetry_charts
from tests.conftest import ADMIN_TOKEN, LiveServer
from tests.support.factories import (
    Account,
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
GOOD_IBAN = "SA03 8000 0000 6080 1016 7519"
BAD_IBAN = "SA0380000000608010167518"  # one digit off: the mod-97 check fails


def t(lang: Lang, key: str, **values: object) -> str:
    return Locale(lang, "Asia/Riyadh").t(key, **values)


def sar(lang: Lang, halala: int) -> str:
    return Locale(lang, "Asia/Riyadh").sar(halala)


@pytest.fixture
async def http(live: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.url) as client:
        yield client


def requested_urls(page: Page) -> list[str]:
    """Every URL the page asks for from now on (navigations, scripts, fetches)."""
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    return urls


async def sign_in(page: Page, live: LiveServer, key: str, lang: Lang) -> None:
    await page.context.add_cookies([{"name": "dcp_lang", "value": lang, "url": live.url}])
    await page.goto(f"{live.url}/signin")
    await page.get_by_label(t(lang, "common.key_label")).fill(key)
    await page.get_by_role("button", name=t(lang, "common.sign_in")).click()
    await expect(page).to_have_url(f"{live.url}/provider")


async def check_language(page: Page, lang: Lang) -> None:
    """Arabic pages are right-to-left and show none of the English catalog's texts."""
    await expect(page.locator("html")).to_have_attribute("dir", "rtl" if lang == "ar" else "ltr")
    if lang == "en":
        return
    english = {text for key, text in catalog("en").items() if catalog("ar")[key] != text and len(text) > 3}
    visible = await page.locator("body").inner_text()
    assert [line.strip() for line in re.split(r"[\n\t]", visible) if line.strip() in english] == []


async def check_fits_a_phone(page: Page, name: str) -> None:
    await page.set_viewport_size({"width": 390, "height": 844})
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{name} scrolls sideways by {overflow}px on a phone"
    await screenshot(page, f"{name}-phone")


async def earning_provider(http: httpx.AsyncClient, database: Database, clock: ManualClock) -> Account:
    """A provider that earned 7500 halala from a renter's settled work."""
    renter = await funded_renter(http, ADMIN, amount=20_000)
    provider = await register_provider(http, name="Node Jeddah")
    await settled_work(
        database,
        renter_id=renter.id,
        provider_id=provider.id,
        held=10_000,
        cost=10_000,
        ref="job-earned",
        now=clock.now(),
    )
    return provider


async def earnings_of(http: httpx.AsyncClient, provider: Account) -> dict[str, int]:
    return (await http.get("/api/providers/earnings", headers=provider.provider_headers)).json()


@pytest.mark.parametrize("lang", LANGS)
class TestRegister:
    async def test_shows_the_key_once_and_the_install_commands(
        self, page: Page, live: LiveServer, http: httpx.AsyncClient, lang: Lang
    ) -> None:
        await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        urls = requested_urls(page)
        await page.context.add_cookies([{"name": "dcp_lang", "value": lang, "url": live.url}])
        await page.goto(f"{live.url}/provider/register")
        await page.get_by_label(t(lang, "common.name")).fill("Faisal")
        await page.get_by_label(t(lang, "common.email")).fill(f"faisal-{lang}@example.sa")
        await page.get_by_label(t(lang, "provider.gpu_model")).fill("RTX 4090")
        await page.get_by_label(t(lang, "provider.os")).select_option("windows")
        await page.get_by_role("button", name=t(lang, "provider.register_submit")).click()

        key = (await page.locator("#secret-value").inner_text()).strip()
        assert key.startswith("dc1-provider-")
        await expect(page.locator(".secret-once .warning")).to_have_text(t(lang, "common.key_warning"))
        for os_name in ("linux", "windows"):
            shown = (await page.locator(f"#install-{os_name}").inner_text()).strip()
            assert shown == install_command(os_name, server=live.url, key=key)
        await page.get_by_role("button", name=t(lang, "provider.copy_windows")).click()
        copied = await page.evaluate("() => navigator.clipboard.readText()")
        assert copied == install_command("windows", server=live.url, key=key)
        await check_language(page, lang)
        await screenshot(page, f"provider-register-{lang}")
        await check_fits_a_phone(page, f"provider-register-{lang}")

        me = await http.get("/api/providers/me", headers={"x-provider-key": key})
        assert me.status_code == 200 and me.json()["provider"]["os"] == "windows"
        await page.get_by_role("link", name=t(lang, "provider.to_dashboard")).click()
        await expect(
            page.get_by_role("heading", name=t(lang, "provider.hello", name="Faisal"))
        ).to_be_visible()
        assert urls and not [url for url in urls if key in url]
        assert key not in await page.content()  # the dashboard never shows it again

    async def test_invalid_fields_are_named_and_nothing_is_created(
        self, page: Page, live: LiveServer, http: httpx.AsyncClient, lang: Lang
    ) -> None:
        await page.context.add_cookies([{"name": "dcp_lang", "value": lang, "url": live.url}])
        await page.goto(f"{live.url}/provider/register")
        await page.get_by_label(t(lang, "common.email")).fill("not-an-email")
        await page.get_by_label(t(lang, "common.phone")).fill("12")
        await page.get_by_role("button", name=t(lang, "provider.register_submit")).click()
        await expect(page.locator("#e-name")).to_have_text(t(lang, "forms.err_required"))
        await expect(page.locator("#e-email")).to_have_text(t(lang, "common.invalid_email"))
        await expect(page.locator("#e-gpu_model")).to_have_text(t(lang, "forms.err_required"))
        await expect(page.locator("#e-phone")).to_have_text(t(lang, "provider.err_phone"))
        await check_language(page, lang)
        providers = await http.get("/api/admin/providers", headers=ADMIN)
        assert providers.json()["total"] == 0


@pytest.mark.parametrize("lang", LANGS)
class TestDashboard:
    async def test_goes_online_after_a_heartbeat_and_charts_the_telemetry(
        self, page: Page, live: LiveServer, http: httpx.AsyncClient, clock: ManualClock, lang: Lang
    ) -> None:
        provider = await register_provider(http, name="Node Riyadh")
        await sign_in(page, live, provider.key, lang)
        await expect(page.get_by_test_id("online-state")).to_have_text(t(lang, "common.status_offline"))
        await expect(page.get_by_test_id("no-telemetry")).to_be_visible()

        for index, (util, temp, used_mib) in enumerate([(20, 55, 4096), (85, 71, 18432), (60, 66, 12288)]):
            if index:
                clock.advance(minutes=15)
            beat = await heartbeat(http, provider, gpu_util_pct=util, temp_c=temp, vram_used_mib=used_mib)
            assert beat.status_code == 200
        if lang == "ar":
            await page.reload()  # English waits for the page to refresh its live part on its own instead
        await expect(page.get_by_test_id("online-state")).to_have_text(
            t(lang, "common.status_online"), timeout=20_000
        )
        telemetry = page.get_by_test_id("telemetry")
        await expect(telemetry.locator("svg")).to_have_count(3)
        await expect(telemetry.locator("svg polyline")).to_have_count(3)
        await expect(telemetry.locator("svg title").first).to_have_text(t(lang, "provider.chart_util"))
        await check_language(page, lang)
        await screenshot(page, f"provider-dashboard-{lang}")
        await check_fits_a_phone(page, f"provider-dashboard-{lang}")

    async def test_pause_and_resume(
        self, page: Page, live: LiveServer, http: httpx.AsyncClient, lang: Lang
    ) -> None:
        provider = await online_provider(http)
        await sign_in(page, live, provider.key, lang)
        await page.get_by_role("button", name=t(lang, "provider.pause"), exact=True).click()
        await expect(page.get_by_test_id("paused")).to_have_text(t(lang, "common.status_paused"))
        me = await http.get("/api/providers/me", headers=provider.provider_headers)
        assert me.json()["provider"]["paused"] is True
        assert me.json()["provider"]["status"] == "paused"
        await check_language(page, lang)
        await page.get_by_role("button", name=t(lang, "provider.resume")).click()
        await expect(page.get_by_test_id("paused")).to_have_text(t(lang, "provider.taking_jobs"))
        me = await http.get("/api/providers/me", headers=provider.provider_headers)
        assert me.json()["provider"]["paused"] is False

    async def test_a_finished_job_shows_with_its_earnings(
        self, page: Page, live: LiveServer, http: httpx.AsyncClient, clock: ManualClock, lang: Lang
    ) -> None:
        provider = await online_provider(http)
        renter = await funded_renter(http, ADMIN)
        await sign_in(page, live, provider.key, lang)
        await expect(page.get_by_test_id("earnings-available")).to_have_text(sar(lang, 0))

        job = (await submit(http, renter, llm_job())).json()["job"]
        daemon = TestProvider(http, provider)
        leased = await daemon.claim()
        assert leased is not None and leased.job_id == job["job_id"]
        await daemon.start(leased)
        clock.advance(seconds=60)
        done = await daemon.result(leased, result={"response": "Riyadh"}, execution_time_ms=60_000)
        assert done.status_code == 200
        earned = (await earnings_of(http, provider))["earnings_halala"]
        assert earned > 0

        await page.reload()
        await expect(page.get_by_test_id("earnings-available")).to_have_text(sar(lang, earned))
        await expect(page.get_by_test_id("earnings-total")).to_have_text(sar(lang, earned))
        row = page.get_by_test_id("jobs").locator("tbody tr", has_text=job["job_id"])
        await expect(row).to_contain_text(t(lang, "common.status_completed"))
        await expect(row).to_contain_text(sar(lang, earned))
        today_bar = page.get_by_test_id("earnings-chart").locator("rect").last
        assert float(await today_bar.get_attribute("height") or 0) > 0
        await check_language(page, lang)


@pytest.mark.parametrize("lang", LANGS)
class TestWithdrawals:
    async def test_a_bad_iban_is_refused_and_a_good_one_is_requested(
        self,
        page: Page,
        live: LiveServer,
        http: httpx.AsyncClient,
        database: Database,
        clock: ManualClock,
        lang: Lang,
    ) -> None:
        provider = await earning_provider(http, database, clock)
        await sign_in(page, live, provider.key, lang)
        await page.get_by_role("link", name=t(lang, "common.nav_withdrawals")).click()
        await expect(page.get_by_test_id("earnings-available")).to_have_text(sar(lang, 7500))

        amount = "٥٠" if lang == "ar" else "50"  # Arabic-Indic digits are read as well
        await page.get_by_label(t(lang, "provider.amount_sar")).fill(amount)
        await page.get_by_label(t(lang, "provider.iban")).fill(BAD_IBAN)
        await page.get_by_role("button", name=t(lang, "provider.request_submit")).click()
        await expect(page.locator("#e-iban")).to_have_text(t(lang, "provider.err_iban"))
        await expect(page.get_by_label(t(lang, "provider.amount_sar"))).to_have_value(amount)
        await check_language(page, lang)
        mine = await http.get("/api/providers/withdrawals", headers=provider.provider_headers)
        assert mine.json()["total"] == 0
        assert (await earnings_of(http, provider))["earnings_halala"] == 7500

        await page.get_by_label(t(lang, "provider.iban")).fill(GOOD_IBAN)
        await page.get_by_role("button", name=t(lang, "provider.request_submit")).click()
        await expect(page.get_by_role("status")).to_have_text(t(lang, "provider.request_sent"))
        row = page.get_by_test_id("withdrawals").locator("tbody tr").first
        await expect(row).to_contain_text("SA03 **** 7519")
        await expect(row).to_contain_text(sar(lang, 5000))
        await expect(row).to_contain_text(t(lang, "common.status_pending"))
        await expect(page.get_by_test_id("earnings-available")).to_have_text(sar(lang, 2500))
        await expect(page.get_by_test_id("earnings-pending")).to_have_text(sar(lang, 5000))
        earnings = await earnings_of(http, provider)
        assert (earnings["earnings_halala"], earnings["payout_pending_halala"]) == (2500, 5000)
        await check_language(page, lang)
        await screenshot(page, f"provider-withdrawals-{lang}")
        await check_fits_a_phone(page, f"provider-withdrawals-{lang}")

    async def test_more_than_earned_and_a_second_open_request_are_refused(
        self,
        page: Page,
        live: LiveServer,
        http: httpx.AsyncClient,
        database: Database,
        clock: ManualClock,
        lang: Lang,
    ) -> None:
        provider = await earning_provider(http, database, clock)
        await sign_in(page, live, provider.key, lang)
        await page.goto(f"{live.url}/provider/withdrawals")
        amount = page.get_by_label(t(lang, "provider.amount_sar"))
        await amount.fill("76")
        await page.get_by_label(t(lang, "provider.iban")).fill(GOOD_IBAN)
        await page.get_by_role("button", name=t(lang, "provider.request_submit")).click()
        await expect(page.locator("#e-amount_sar")).to_have_text(
            t(lang, "errors.MoreThanEarned") if lang == "ar" else re.compile("exceeds your withdrawable")
        )
        await amount.fill("5")
        await page.get_by_role("button", name=t(lang, "provider.request_submit")).click()
        await expect(page.locator("#e-amount_sar")).to_have_text(
            t(lang, "provider.err_amount_min", min=sar(lang, 1000))
        )
        await amount.fill("20")
        await page.get_by_role("button", name=t(lang, "provider.request_submit")).click()
        await expect(page.get_by_role("status")).to_be_visible()
        await amount.fill("20")
        await page.get_by_label(t(lang, "provider.iban")).fill(GOOD_IBAN)
        await page.get_by_role("button", name=t(lang, "provider.request_submit")).click()
        await expect(page.get_by_role("alert").first).to_have_text(
            t(lang, "errors.AlreadyOpen") if lang == "ar" else re.compile("already have a withdrawal")
        )
        mine = (await http.get("/api/providers/withdrawals", headers=provider.provider_headers)).json()
        assert mine["total"] == 1 and mine["withdrawals"][0]["amount_halala"] == 2000


async def _csrf(client: httpx.AsyncClient, path: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', (await client.get(path)).text)
    assert found
    return found.group(1)


async def _registered(client: httpx.AsyncClient) -> str:
    """Registers through the form; the client is signed in afterwards. Returns the key."""
    token = await _csrf(client, "/provider/register")
    form = {"csrf": token, "name": "Eve", "email": "eve@example.sa", "gpu_model": "RTX 3090", "os": "linux"}
    answer = await client.post("/provider/register", data=form)
    assert answer.status_code == 201
    found = re.search(r'id="secret-value"[^>]*>([^<]+)<', answer.text)
    assert found
    return found.group(1).strip()


class TestAccess:
    async def test_signed_out_visitors_are_sent_to_sign_in(self, client: httpx.AsyncClient) -> None:
        for path in ("/provider", "/provider/withdrawals"):
            answer = await client.get(path)
            assert answer.status_code == 303 and answer.headers["location"] == f"/signin?next={path}"
        assert (await client.get("/provider/live")).status_code == 401

    async def test_a_renter_is_not_a_provider(self, client: httpx.AsyncClient) -> None:
        renter = await register_renter(client)
        token = await _csrf(client, "/signin")
        await client.post("/signin", data={"csrf": token, "key": renter.key})
        assert (await client.get("/provider")).status_code == 303

    async def test_pausing_needs_the_csrf_token(self, client: httpx.AsyncClient) -> None:
        key = await _registered(client)
        assert (await client.post("/provider/pause", data={})).status_code == 403
        me = await client.get("/api/providers/me", headers={"x-provider-key": key})
        assert me.json()["provider"]["paused"] is False

    async def test_install_commands_again_only_with_the_accounts_key(self, client: httpx.AsyncClient) -> None:
        key = await _registered(client)
        token = await _csrf(client, "/provider")
        wrong = await client.post(
            "/provider/install", data={"csrf": token, "key": "dc1-provider-" + "x" * 40}
        )
        assert wrong.status_code == 400 and "dc1-provider-x" not in wrong.text
        right = await client.post("/provider/install", data={"csrf": token, "key": key})
        assert right.status_code == 200 and key in right.text

    async def test_a_new_key_replaces_the_old_one(self, client: httpx.AsyncClient) -> None:
        old = await _registered(client)
        token = await _csrf(client, "/provider")
        rotated = await client.post("/provider/key", data={"csrf": token})
        found = re.search(r'id="secret-value"[^>]*>([^<]+)<', rotated.text)
        assert rotated.status_code == 200 and found
        new = found.group(1).strip()
        assert new != old
        assert (await client.get("/api/providers/me", headers={"x-provider-key": old})).status_code == 401
        assert (await client.get("/api/providers/me", headers={"x-provider-key": new})).status_code == 200
        assert (await client.get("/provider")).status_code == 200  # this browser stays signed in


@pytest.mark.parametrize(
    ("text", "halala"),
    [
        ("150", 15_000),
        ("150.5", 15_050),
        ("1,500.25", 150_025),
        ("1,234,567", 123_456_700),
        ("99999999999", 9_999_999_999_900),  # read, so that the form can say it is out of range
        ("99,999,999,999", 9_999_999_999_900),
        ("9" * 16, None),
        ("1,2,3", None),  # not thousands: was read as 123 SAR
        ("1,5", None),  # a decimal comma: was read as 15 SAR
        ("١٥٠٫٥", 15_050),
        (" 20 ", 2_000),
        ("1.234", None),
        ("-5", None),
        ("", None),
        ("ten", None),
    ],
)
def test_amounts_in_sar_are_read_as_people_write_them(text: str, halala: int | None) -> None:
    assert halala_of(text) == halala


def test_telemetry_is_averaged_per_quarter_hour_and_gaps_stay_empty() -> None:
    end = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    samples = [
        ProviderHeartbeat(received_at=end - timedelta(hours=3), gpu_util_pct=100),
        ProviderHeartbeat(received_at=end - timedelta(minutes=10), gpu_util_pct=40),
        ProviderHeartbeat(received_at=end - timedelta(minutes=5), gpu_util_pct=60),
    ]
    charts = telemetry_charts(samples, end=end, locale=Locale("en", "Asia/Riyadh"))
    points = re.search(r'points="([^"]+)"', charts.utilisation)
    assert points
    heights = [float(pair.split(",")[1]) for pair in points.group(1).split()]
    assert len(heights) == 2  # two quarter hours had samples; the other 94 draw nothing
    assert heights[0] < heights[1]  # 100 % three hours ago is drawn higher than the 50 % average now
    assert ">14:45<" in charts.utilisation  # the last quarter hour starts then, in Riyadh time (UTC+3)
