"""Both languages complete: every message in English and Arabic, every key a template uses defined, no text
written into a template outside the catalogs, and Arabic pages right-to-left with no English message left."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from dcp.web.i18n import catalog

WEB = Path(__file__).parents[2] / "src" / "dcp" / "web"
TEMPLATES = sorted((WEB / "templates").rglob("*.html"))
# Text a template may write as it is: brand and technical names that read the same in both languages.
LITERAL_OK = re.compile(r"^(DCP|English|العربية|[*×·—:|/(),.\s-]|&[a-z]+;)+$")


def test_both_languages_define_the_same_messages() -> None:
    for english_file in sorted((WEB / "locales" / "en").glob("*.json")):
        arabic_file = WEB / "locales" / "ar" / english_file.name
        english = json.loads(english_file.read_text(encoding="utf-8"))
        arabic = json.loads(arabic_file.read_text(encoding="utf-8"))
        assert sorted(english) == sorted(arabic), english_file.name
        for key, text in arabic.items():
            assert re.search(r"[\u0600-\u06ff]", text), f"ar/{english_file.name}:{key} has no Arabic in it"
            assert set(re.findall(r"{(\w+)}", text)) == set(re.findall(r"{(\w+)}", english[key])), key


def test_every_key_the_templates_use_exists() -> None:
    defined = catalog("en").keys()
    for template in TEMPLATES:
        for key in re.findall(r"""\bt\(\s*["']([\w.]+)["']\s*[,)]""", template.read_text(encoding="utf-8")):
            assert key in defined, f"{template.name} uses undefined message {key}"


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(WEB / "templates")))
def test_templates_write_no_text_of_their_own(template: Path) -> None:
    """Words on a page come from the catalogs (so Arabic pages have no English left in them)."""
    source = template.read_text(encoding="utf-8")
    source = re.sub(r"{#.*?#}|{%.*?%}|{{.*?}}", "", source, flags=re.DOTALL)
    source = re.sub(r"<(script|style|pre|code)\b.*?</\1>", "", source, flags=re.DOTALL)
    for text in re.findall(r">([^<>]+)<", source):
        assert not text.strip() or LITERAL_OK.match(text.strip()), f"{template.name}: literal text {text!r}"


PUBLIC_PAGES = [
    "/",
    "/signin",
    "/renter/register",
    "/docs",
    "/docs/quickstart/renter",
    "/docs/quickstart/provider",
]


@pytest.mark.parametrize("path", PUBLIC_PAGES)
async def test_arabic_pages_are_rtl_and_leave_no_english_message(
    client: httpx.AsyncClient, path: str
) -> None:
    page = await client.get(path, headers={"accept-language": "ar-SA,ar;q=0.9"})
    assert page.status_code == 200
    assert '<html lang="ar" dir="rtl">' in page.text
    visible = re.sub(r"<[^>]+>", "\n", re.sub(r"<(script|style)\b.*?</\1>", "", page.text, flags=re.DOTALL))
    english = {text for key, text in catalog("en").items() if catalog("ar")[key] != text and len(text) > 3}
    leftovers = [line.strip() for line in visible.splitlines() if line.strip() in english]
    assert leftovers == []


async def test_the_language_choice_is_remembered(client: httpx.AsyncClient) -> None:
    switched = await client.get("/lang/ar", params={"next": "/signin"})
    assert switched.status_code == 303 and switched.headers["location"] == "/signin"
    page = await client.get("/signin")
    assert 'lang="ar"' in page.text


async def test_the_language_switch_comes_back_to_the_page_and_its_query(client: httpx.AsyncClient) -> None:
    page = await client.get("/signin", params={"next": "/renter/jobs"})
    [link] = re.findall(r'class="lang-switch" href="([^"]+)"', page.text)
    switched = await client.get(link.replace("&amp;", "&"))
    assert unquote(switched.headers["location"]) == "/signin?next=/renter/jobs"  # where signing in leads


async def test_the_language_switch_never_sends_the_browser_elsewhere(client: httpx.AsyncClient) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        switched = await client.get("/lang/en", params={"next": target})
        assert switched.headers["location"] == "/"


def test_arabic_amounts_use_arabic_digits() -> None:
    from dcp.web.i18n import Locale

    assert Locale("ar", "Asia/Riyadh").sar(123456) == "١٬٢٣٤٫٥٦ ر.س"
    assert Locale("en", "Asia/Riyadh").sar(123456) == "SAR 1,234.56"
