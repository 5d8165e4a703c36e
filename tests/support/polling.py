"""Waiting for something another task or process does: poll with a deadline, never a bare sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

_STEP = 0.02


async def until(check: Callable[[], Awaitable[bool]], *, within: float = 5.0, what: str = "it") -> None:
    """Return once ``check()`` is true; fail if it is not within ``within`` seconds."""
    for _ in range(max(1, int(within / _STEP))):
        if await check():
            return
        await asyncio.sleep(_STEP)
    raise AssertionError(f"{what} did not come to pass within {within:g} s")
