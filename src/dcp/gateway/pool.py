"""The serving pool as the gateway sees it: which providers serve which models, online and ready now."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.config import Settings
from dcp.jobs.placement import accepting
from dcp.models import Provider


async def serving(session: AsyncSession, *, settings: Settings, now: datetime) -> list[Provider]:
    found = await session.execute(
        select(Provider).where(*accepting(now=now, settings=settings), Provider.serving_ready.is_(True))
    )
    return list(found.scalars())


def models_of(providers: list[Provider]) -> dict[str, list[Provider]]:
    by_model: dict[str, list[Provider]] = {}
    for provider in providers:
        for model in provider.serving_models:
            by_model.setdefault(model, []).append(provider)
    return by_model
