"""Request-scoped dependencies every router uses: the settings and the current time."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from dcp.config import Settings
from dcp.kit.clock import Clock


# async: FastAPI runs a plain def dependency on its thread pool, a hop that costs more than the call itself.
async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _now(request: Request) -> datetime:
    clock: Clock = request.app.state.clock
    return clock.now()


SettingsDep = Annotated[Settings, Depends(_settings)]
NowDep = Annotated[datetime, Depends(_now)]
