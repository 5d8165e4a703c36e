"""Per-token prices of /v1 models: what the admin set, or the configured defaults."""

from __future__ import annotations

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
    return row


async def reset_price(session: AsyncSession, model: str) -> bool:
    row = await session.get(ModelPrice, model)
    if row is None:
        return False
    await session.delete(row)
    await session.flush()
    return True
