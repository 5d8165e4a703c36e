"""A runtime's events for unit tests: records progress, tokens, logs and the endpoint; can be cancelled."""

from __future__ import annotations

import asyncio
import contextlib


class RecordingEvents:
    def __init__(self) -> None:
        self.progresses: list[int] = []
        self.token_texts: list[str] = []
        self.logs: list[str] = []
        self.endpoints: list[str] = []
        self._cancelled = asyncio.Event()

    def progress(self, percent: int) -> None:
        self.progresses.append(percent)

    def tokens(self, text: str) -> None:
        self.token_texts.append(text)

    def log(self, line: str) -> None:
        self.logs.append(line)

    def endpoint(self, url: str) -> None:
        self.endpoints.append(url)

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        self._cancelled.set()

    async def wait_cancelled(self, within: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._cancelled.wait(), timeout=max(within, 0))
        return self.cancelled
