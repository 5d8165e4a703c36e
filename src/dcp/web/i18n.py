"""English and Arabic: the message catalogs, choosing a language, and locale formatting of numbers and SAR."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from fastapi import Request

Lang = Literal["en", "ar"]
LANGS: tuple[Lang, ...] = ("en", "ar")
LANG_COOKIE = "dcp_lang"
_LOCALES = Path(__file__).parent / "locales"
# Arabic-Indic digits, then the Arabic decimal and thousands separators.
_ARABIC_DIGITS = str.maketrans("0123456789.,", "".join(map(chr, range(0x0660, 0x066A))) + "\u066b\u066c")


@cache
def catalog(lang: Lang) -> dict[str, str]:
    """Every message of one language: ``area.key`` for each ``locales/<lang>/<area>.json``."""
    messages: dict[str, str] = {}
    for path in sorted((_LOCALES / lang).glob("*.json")):
        area = path.stem
        for key, text in json.loads(path.read_text(encoding="utf-8")).items():
            messages[f"{area}.{key}"] = text
    return messages


def chosen_lang(request: Request) -> Lang:
    """The remembered choice, else the browser's first preference, else English."""
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie == "ar":
        return "ar"
    if cookie == "en":
        return "en"
    preferred = request.headers.get("accept-language", "").split(",")[0].strip().lower()
    return "ar" if preferred.startswith("ar") else "en"


@dataclass(frozen=True)
class Locale:
    """One language's messages and formats, handed to every template."""

    lang: Lang
    timezone: str

    @property
    def dir(self) -> str:
        return "rtl" if self.lang == "ar" else "ltr"

    def t(self, key: str, **values: object) -> str:
        """The message for ``key``; a missing key shows itself (and fails the catalog tests)."""
        text = catalog(self.lang).get(key, key)
        return text.format(**values) if values else text

    def number(self, value: int | float | Decimal, *, places: int = 0) -> str:
        text = f"{value:,.{places}f}"
        return text.translate(_ARABIC_DIGITS) if self.lang == "ar" else text

    def sar(self, halala: int) -> str:
        """An amount of halala as SAR, as people in Saudi Arabia write it in this language."""
        amount = self.number(Decimal(halala) / 100, places=2)
        return f"{amount} ر.س" if self.lang == "ar" else f"SAR {amount}"

    def percent(self, value: int | float) -> str:
        return f"{self.number(value)}٪" if self.lang == "ar" else f"{self.number(value)}%"

    def when(self, moment: datetime | str | None) -> str:
        """A moment (or the API's ISO 8601 text of one) in the server's time zone."""
        if not moment:
            return "—"
        if isinstance(moment, str):
            moment = datetime.fromisoformat(moment)
        local = moment.astimezone(ZoneInfo(self.timezone))
        text = local.strftime("%Y-%m-%d %H:%M")
        return text.translate(_ARABIC_DIGITS) if self.lang == "ar" else text

    @property
    def formatters(self) -> dict[str, Callable[..., str]]:
        return {"t": self.t, "num": self.number, "pct": self.percent, "sar": self.sar, "when": self.when}
