"""Saudi IBAN validation: ``SA`` + 22 digits with a valid ISO 13616 mod-97 check."""

from __future__ import annotations

import re

_SAUDI = re.compile(r"^SA[0-9]{22}$")  # not \d: in Python it also matches Arabic-Indic digits


def normalize_iban(value: str) -> str:
    return re.sub(r"[\s-]", "", value).upper()


def is_valid_saudi_iban(iban: str) -> bool:
    if not _SAUDI.fullmatch(iban):
        return False
    rearranged = iban[4:] + iban[:4]
    digits = "".join(str(int(char, 36)) for char in rearranged)
    return int(digits) % 97 == 1


def mask_iban(iban: str) -> str:
    """``SA0380000000608010167519`` → ``SA03 **** 7519``: enough to recognise, not to reuse."""
    return f"{iban[:4]} **** {iban[-4:]}"
