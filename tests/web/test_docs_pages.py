"""The API reference and quickstarts: Try It Out runs real requests in a browser, in English and Arabic."""

from __future__ import annotations

import json
import re
from html import unescape

import httpx
import pytest
from playwright.async_api import Page, expect

from dcp.config import Settings
from dcp.web.i18n import catalog
from tests.conftest import LiveServer
from tests.web.conftest import screenshot

REGISTER = "POST /api/renters/register"
ME = "GET /api/renters/me"
GUIDES = ["/docs/quickstart/renter", "/docs/quickstart/provider"]


def slug(operation: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", operation.lower()).strip("-")


async def spec_operations(client: httpx.AsyncClient) -> list[str]:
    spec = (await client.get("/docs/openapi.json")).json()
    return [f"{method.upper()} {path}" for path, methods in spec["paths"].items() for method in methods]


async def try_it(
    page: Page, operation: str, *, body: object = None, keys: dict[str, str] | None = None
) -> tuple[str, str]:
    """Runs ``operation`` in Try It Out; the status line and the response panel's text."""
    await page.select_option("#try-op", label=operation)
    fields = page.locator(f"#try-{slug(operation)}")
    await expect(fields).to_be_visible()
    if body is not None:
        await fields.locator("textarea").fill(json.dumps(body, ensure_ascii=False))
    for scheme, value in (keys or {}).items():
        await page.locator(f"#key-{scheme}").fill(value)
    await page.locator("#try-run").click()
    await expect(page.locator("#try-it")).to_have_attribute("data-state", "done")
    status = await page.locator("#try-status").inner_text()
    return status, await page.locator("#try-body").inner_text()


async def stored_in_browser(page: Page) -> str:
    storage = await page.evaluate(
        "() => JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage}) + document.cookie"
    )
    cookies = [cookie["value"] for cookie in await page.context.cookies()]
    return storage + " ".join(cookies) + page.url


class TestTryItOut:
    @pytest.mark.parametrize("lang", ["en", "ar"])
    async def test_registers_a_renter_then_reads_it_with_the_key(
        self, page: Page, live: LiveServer, lang: str
    ) -> None:
        urls: list[str] = []
        page.on("request", lambda request: urls.append(request.url))
        await page.goto(f"{live.url}/lang/{lang}?next=/docs")
        await expect(page.locator("html")).to_have_attribute("dir", "rtl" if lang == "ar" else "ltr")
        name = "نورة" if lang == "ar" else "Nora"
        status, body = await try_it(page, REGISTER, body={"name": name, "email": f"nora-{lang}@example.com"})
        assert status.startswith("201")
        key = json.loads(body)["api_key"]
        assert key.startswith("dc1-renter-")

        status, body = await try_it(page, ME, keys={"RenterKey": key})
        assert status.startswith("200")
        assert json.loads(body)["renter"]["name"] == name
        await expect(page.locator("#try-headers")).to_contain_text("application/json")
        curl = await page.locator("#try-curl").inner_text()
        assert '-H "x-renter-key: $RENTER_KEY"' in curl and key not in curl
        await screenshot(page, f"docs-{lang}")

        assert key not in await stored_in_browser(page)
        assert not [url for url in urls if key in url]

    async def test_sends_only_the_key_the_endpoint_takes(self, page: Page, live: LiveServer) -> None:
        sent: list[dict[str, str]] = []
        page.on("request", lambda request: sent.append(request.headers))
        await page.goto(f"{live.url}/docs")
        await page.locator("#key-AdminToken").fill("dc1-admin-not-for-renters")
        status, body = await try_it(page, "GET /api/renters/available-providers")
        assert status.startswith("200") and json.loads(body)["providers"] == []
        assert not [headers for headers in sent if "x-admin-token" in headers]

    async def test_a_body_that_is_not_json_is_refused_before_sending(
        self, page: Page, live: LiveServer
    ) -> None:
        await page.goto(f"{live.url}/docs")
        await page.select_option("#try-op", label=REGISTER)
        await page.locator(f"#try-{slug(REGISTER)} textarea").fill("{not json")
        await page.locator("#try-run").click()
        await expect(page.locator("#try-status")).to_have_text("The request body is not valid JSON.")

    async def test_try_buttons_in_the_reference_choose_the_endpoint(
        self, page: Page, live: LiveServer
    ) -> None:
        await page.goto(f"{live.url}/docs")
        await page.locator(f"#{slug(ME)} summary").click()
        await page.locator(f"#{slug(ME)} [data-try]").click()
        await expect(page.locator("#try-op")).to_have_value(slug(ME))
        await expect(page.locator(f"#try-{slug(ME)}")).to_be_visible()
        await expect(page.locator(f"#try-{slug(REGISTER)}")).to_be_hidden()


class TestReference:
    async def test_lists_every_operation_of_the_spec(self, client: httpx.AsyncClient) -> None:
        operations = await spec_operations(client)
        for lang in ("en", "ar"):
            page = await client.get("/docs", headers={"accept-language": lang})
            listed = [unescape(key) for key in re.findall(r'data-op-key="([^"]+)"', page.text)]
            assert sorted(listed) == sorted(operations)
            assert len(re.findall(r"<fieldset class=\"try-op\"", page.text)) == len(operations)

    async def test_every_operation_has_notes_in_both_languages(self, client: httpx.AsyncClient) -> None:
        """A new route fails here until docs.json says what it does, in English and in Arabic."""
        operations = await spec_operations(client)
        assert [op for op in operations if f"docs.op.{op}" not in catalog("ar")] == []
        assert [op for op in operations if f"docs.op.{op}" not in catalog("en")] == []
        stale = [key for key in catalog("en") if key.startswith("docs.op.") and key[8:] not in operations]
        assert stale == []

    async def test_every_tag_has_a_title(self, client: httpx.AsyncClient) -> None:
        spec = (await client.get("/docs/openapi.json")).json()
        tags = {
            (op.get("tags") or ["other"])[0] for methods in spec["paths"].values() for op in methods.values()
        }
        assert [tag for tag in tags if "docs.tag_" + tag.replace(" ", "_") not in catalog("ar")] == []

    async def test_arabic_page_is_rtl_with_arabic_notes_only(self, client: httpx.AsyncClient) -> None:
        arabic = (await client.get("/docs", headers={"accept-language": "ar"})).text
        assert '<html lang="ar" dir="rtl">' in arabic
        assert catalog("ar")[f"docs.op.{REGISTER}"] in arabic
        assert catalog("en")[f"docs.op.{REGISTER}"] not in arabic

    async def test_english_page_shows_the_arabic_notes_beside_the_english(
        self, client: httpx.AsyncClient
    ) -> None:
        english = (await client.get("/docs", headers={"accept-language": "en"})).text
        assert catalog("en")[f"docs.op.{REGISTER}"] in english
        assert f'lang="ar" dir="rtl">{catalog("ar")[f"docs.op.{REGISTER}"]}<' in english

    @pytest.mark.parametrize("operation", [REGISTER, "POST /api/providers/register"])
    async def test_example_bodies_work_as_they_are(self, client: httpx.AsyncClient, operation: str) -> None:
        page = (await client.get("/docs")).text
        textarea = re.search(rf'id="try-{slug(operation)}-body"[^>]*>(.*?)</textarea>', page, re.DOTALL)
        assert textarea is not None
        method, path = operation.split(" ")
        answer = await client.request(method, path, json=json.loads(unescape(textarea.group(1))))
        assert answer.status_code == 201, answer.text

    async def test_shows_example_bodies_and_auth(self, client: httpx.AsyncClient) -> None:
        page = (await client.get("/docs", headers={"accept-language": "en"})).text
        card = page.split(f'id="{slug("POST /api/jobs/submit")}"')[1].split("</details>")[0]
        assert "llm_inference" in unescape(card) and "x-renter-key" in card
        assert "Renter key" in card


class TestQuickstarts:
    @pytest.mark.parametrize("path", GUIDES)
    @pytest.mark.parametrize("lang", ["en", "ar"])
    async def test_render_with_this_servers_url(
        self, client: httpx.AsyncClient, settings: Settings, path: str, lang: str
    ) -> None:
        page = await client.get(path, headers={"accept-language": lang})
        assert page.status_code == 200
        assert f'<html lang="{lang}"' in page.text
        text = unescape(page.text)
        assert f"'{settings.public_url}/api/" in text
        assert len(re.findall(r'<pre dir="ltr">', page.text)) >= 5

    async def test_renter_guide_covers_every_client(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        text = unescape((await client.get("/docs/quickstart/renter")).text)
        for needle in (
            "/api/renters/register",
            "/api/renters/topups",
            "/api/renters/available-providers",
            "/api/jobs/submit",
            "dc1.Client(",
            "DC1RenterClient",
            f'openai.OpenAI(base_url="{settings.public_url}/v1"',
            "dcp run llm",
        ):
            assert needle in text, needle

    async def test_provider_guide_has_both_installers(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        text = unescape((await client.get("/docs/quickstart/provider")).text)
        assert (
            f"curl -fsSL -H 'x-provider-key: dc1-provider-YOUR_KEY' '{settings.public_url}/api/providers"
            in text
        )
        assert "Invoke-WebRequest" in text
        assert "/api/providers/withdrawals" in text and "withdrawals.request" in text

    @pytest.mark.parametrize(("path", "lang"), [(GUIDES[0], "ar"), (GUIDES[1], "en")])
    async def test_code_stays_left_to_right_in_a_browser(
        self, page: Page, live: LiveServer, path: str, lang: str
    ) -> None:
        await page.goto(f"{live.url}/lang/{lang}?next={path}")
        await expect(page.locator("html")).to_have_attribute("lang", lang)
        code = page.locator("#code-register")
        await expect(code).to_contain_text(f"{live.url}/api/")
        assert await code.evaluate("element => getComputedStyle(element.closest('pre')).direction") == "ltr"
        name = path.rsplit("/", 1)[1]
        await screenshot(page, f"docs-quickstart-{name}-{lang}")

    async def test_copy_button_copies_the_install_line(self, page: Page, live: LiveServer) -> None:
        await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        await page.goto(f"{live.url}/docs/quickstart/provider")
        await page.locator('[data-copy-target="code-linux"]').click()
        copied = await page.evaluate("() => navigator.clipboard.readText()")
        assert copied.startswith("curl -fsSL -H 'x-provider-key: dc1-provider-YOUR_KEY'")
        assert copied.endswith(f"'{live.url}/api/providers/download/setup?os=linux' | sh")
