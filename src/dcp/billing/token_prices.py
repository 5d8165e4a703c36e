"""Per-token prices of /v1 models: what the admin set, or the configured defaults."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.billing.pricing import TokenPrice
from dcp.config import PricingSettings
from dcp.models import ModelPrice


async def price_for(session: AsyncSession, model: str, pricing: PricingSettings) -> TokenPrice:
    row = await session.get(ModelPrice, model)
    if row is None:
        return TokenPrice(pricing.default_input_per_million, pricing.default_output_per_million)
    return TokenPrice(row.input_per_million_halala, row.output_per_million_halala)


@dataclass
class _Edits:
    count: int = 0


_edits = _Edits()  # price changes made through this process


@dataclass
class PriceCache:
    """Prices kept for ``ttl_seconds`` per process, and read again in the background once half of that has
    passed (``refresh_due``): a change made through this process is seen at once, one made through another
    replica within the TTL."""

    ttl_seconds: float
    _prices: dict[tuple[str, int, int], tuple[float, int, TokenPrice]] = field(default_factory=dict)
    _refreshing: set[tuple[str, int, int]] = field(default_factory=set)

    def peek(self, model: str, pricing: PricingSettings) -> TokenPrice | None:
        """The cached price while it is fresh and no price changed through this process since."""
        hit = self._prices.get(_key(model, pricing))
        if hit is not None and hit[0] > time.monotonic() and hit[1] == _edits.count:
            return hit[2]
        return None

    def refresh_due(self, model: str, pricing: PricingSettings) -> bool:
        """Half the TTL has passed and no refresh of this price is running: the caller starts one."""
        key = _key(model, pricing)
        hit = self._prices.get(key)
        due = hit is not None and key not in self._refreshing
        due = due and hit is not None and hit[0] - time.monotonic() <= self.ttl_seconds / 2
        if due:
            self._refreshing.add(key)
        return due

    async def price_for(
        self, session: AsyncSession, model: str, pricing: PricingSettings, *, reread: bool = False
    ) -> TokenPrice:
        key = _key(model, pricing)
        if not reread and (price := self.peek(model, pricing)) is not None:
            return price
        edits = _edits.count  # read before the row: an edit during the read is not hidden behind the TTL
        try:
            price = await price_for(session, model, pricing)
        finally:
            self._refreshing.discard(key)
        self._prices[key] = (time.monotonic() + self.ttl_seconds, edits, price)
        return price


def _key(model: str, pricing: PricingSettings) -> tuple[str, int, int]:
    return (model, pricing.default_input_per_million, pricing.default_output_per_million)


async def all_prices(session: AsyncSession) -> list[ModelPrice]:
    return list((await session.execute(select(ModelPrice).order_by(ModelPrice.model))).scalars())


async def set_price(
    session: AsyncSession, *, model: str, input_per_million: int, output_per_million: int, now: datetime
) -> ModelPrice:
    row = await session.get(ModelPrice, model)
    if row is None:
        row = ModelPrice(model=model)
        session.add(row)
    row.input_per_million_halala = input_per_million
    row.output_per_million_halala = output_per_million
    row.updated_at = now
    await session.flush()
    _edits.count += 1
    return row


async def reset_price(session: AsyncSession, model: str) -> bool:
    row = await session.get(ModelPrice, model)
    if row is None:
        return False
    await session.delete(row)
    await session.flush()
    _edits.count += 1
    return True
