"""Saudi IBAN validation: ``SA`` + 22 digits with valid ISO 13616 check digits (02 to 98, mod-97)."""

from __future__ import annotations

import re

_SAUDI = re.compile(r"^SA[0-9]{22}$")  # not \d: in Python it also matches Arabic-Indic digits


# Arabic-Indic and Eastern Arabic-Indic digits, as people type them, as the Latin ones an IBAN is made of.
_TO_LATIN = str.maketrans("".join(map(chr, [*range(0x660, 0x66A), *range(0x6F0, 0x6FA)])), "0123456789" * 2)


def normalize_iban(value: str) -> str:
    """Spaces and dashes dropped, upper case, Latin digits."""
    return re.sub(r"[\s-]", "", value).upper().translate(_TO_LATIN)


def is_valid_saudi_iban(iban: str) -> bool:
    # Check digits are issued from 02 to 98: 00, 01 and 99 pass the mod-97 test for 97, 98 and 02's numbers.
    if not _SAUDI.fullmatch(iban) or not 2 <= int(iban[2:4]) <= 98:
        return False
    rearranged = iban[4:] + iban[:4]
    digits = "".join(str(int(char, 36)) for char in rearranged)
    return int(digits) % 97 == 1


def mask_iban(iban: str) -> str:
    """``SA0380000000608010167519`` → ``SA03 **** 7519``: enough to recognise, not to reuse."""
    return f"{iban[:4]} **** {iban[-4:]}"
