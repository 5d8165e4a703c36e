"""Validated field types shared by request schemas: trimmed, bounded strings, emails, phones."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator, BeforeValidator, EmailStr, StringConstraints

_PHONE = re.compile(r"^\+?[0-9]{7,15}$")


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _phone(value: str) -> str:
    compact = re.sub(r"[\s\-()]", "", value)
    if not _PHONE.fullmatch(compact):
        raise ValueError("must be a phone number of 7 to 15 digits, optionally starting with +")
    return compact


def _lower(value: str) -> str:
    return value.lower()


Name = Annotated[str, BeforeValidator(_strip), StringConstraints(min_length=1, max_length=100)]
Text200 = Annotated[str, BeforeValidator(_strip), StringConstraints(min_length=1, max_length=200)]
Email = Annotated[
    EmailStr, BeforeValidator(_strip), StringConstraints(max_length=254), AfterValidator(_lower)
]
Phone = Annotated[str, BeforeValidator(_strip), StringConstraints(max_length=30), AfterValidator(_phone)]


def _no_nul(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError("must not contain NUL characters (%00)")
    return value


# For text from a URL that reaches SQL: PostgreSQL refuses NUL (bodies are checked by ``kit.storable``).
NoNul = AfterValidator(_no_nul)


def lenient_enum(aliases: dict[str, str]) -> BeforeValidator:
    """Accept the seeds' other spellings of an enum value, case- and separator-insensitively."""

    def normalize(value: object) -> object:
        if not isinstance(value, str):
            return value
        key = value.strip().lower().replace("-", "_").replace(" ", "_")
        return aliases.get(key, key)

    return BeforeValidator(normalize)


# Path ids are bounded so that no database is ever asked for an integer it cannot hold.
IdPath = Annotated[int, Path(ge=1, le=2_147_483_647)]
