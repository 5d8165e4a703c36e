"""Money helpers: amounts are integer halala; SAR appears only as an exact decimal string."""

from __future__ import annotations

from decimal import Decimal

HALALA_PER_SAR = 100


def sar_string(halala: int) -> str:
    """``12345`` → ``"123.45"``; exact, never through a float."""
    return str((Decimal(halala) / HALALA_PER_SAR).quantize(Decimal("0.01")))


def percent_of(amount: int, percent: int) -> int:
    """``amount * percent / 100`` rounded down, in integers."""
    return amount * percent // 100


def ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)
