"""Form input on the pages: reading numbers, and pydantic's errors as one translated message per field."""

from __future__ import annotations

import re
from decimal import Decimal

from pydantic import ValidationError

from dcp.web.i18n import Locale

_SKIPPED_LOC_PARTS = ("body", "params")


# Latin or Arabic-Indic digits, as people type them; not every character Python calls a digit ("²", which
# int() refuses), nor more than any field takes (int() refuses past 4,300 digits): each was a 500.
_WHOLE_NUMBER = re.compile(r"-?[0-9\u0660-\u0669\u06f0-\u06f9]{1,18}")


def whole_number(text: str | None) -> int | str | None:
    """An int for digits, the text itself otherwise (so validation names the field), None for empty."""
    if not text:
        return None
    stripped = text.strip()
    return int(stripped) if _WHOLE_NUMBER.fullmatch(stripped) else stripped


# Arabic-Indic digits and separators, as people type them, in the characters validation reads.
_TO_LATIN = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹٫٬", "01234567890123456789.,")
# SAR with at most two decimals, thousands grouped by commas or not at all ("1,2,3" is no amount).
_SAR = re.compile(r"(?:[0-9]{1,3}(?:,[0-9]{3}){1,4}|[0-9]{1,15})(?:\.[0-9]{1,2})?")


def in_latin_digits(text: str) -> str:
    """``text`` with Arabic-Indic digits and separators as the Latin ones validation reads (0.7 for the
    same typed in Arabic-Indic digits)."""
    return text.strip().translate(_TO_LATIN)


def halala_of(text: str) -> int | None:
    """``150``, ``150.5``, ``1,500.25`` (or the same in Arabic-Indic digits) SAR in halala; None otherwise."""
    cleaned = in_latin_digits(text)
    if not _SAR.fullmatch(cleaned):
        return None
    return int(Decimal(cleaned.replace(",", "")) * 100)


def field_errors(error: ValidationError, locale: Locale) -> dict[str, str]:
    """The first problem of each field, in the page's language, keyed by the form field's name."""
    found: dict[str, str] = {}
    for problem in error.errors():
        parts = [str(part) for part in problem["loc"] if part not in _SKIPPED_LOC_PARTS]
        field = parts[0] if parts else "form"
        if field == "email" and problem["type"] != "missing":
            found.setdefault(field, locale.t("common.invalid_email"))
        found.setdefault(field, _message(problem["type"], problem.get("ctx") or {}, locale))
    return found


def _message(kind: str, ctx: dict[str, object], locale: Locale) -> str:
    if kind == "missing" or (kind == "string_too_short" and ctx.get("min_length") == 1):
        return locale.t("forms.err_required")
    if kind in ("greater_than_equal", "greater_than"):
        return locale.t("forms.err_min", min=_num(ctx, "ge", "gt", locale=locale))
    if kind in ("less_than_equal", "less_than"):
        return locale.t("forms.err_max", max=_num(ctx, "le", "lt", locale=locale))
    if kind.startswith("int_"):
        return locale.t("forms.err_number")
    if kind.startswith("float_"):
        return locale.t("forms.err_decimal")
    if kind in ("string_too_long", "too_long"):  # too_long: a field checked by a validator of its own first
        return locale.t("forms.err_too_long", max=locale.number(int(str(ctx.get("max_length", 0)))))
    return locale.t("forms.err_invalid")


def _num(ctx: dict[str, object], *names: str, locale: Locale) -> str:
    for name in names:
        if name in ctx:
            value = ctx[name]
            return locale.number(value) if isinstance(value, int | float) else str(value)
    return ""
